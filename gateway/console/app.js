// The Sluice console: a client of the REST door like any other. Every call
// carries the user's bearer token (sessionStorage) when there is one; the
// page polls GET /v1/stats each second and derives rates by differencing
// its cumulative counters. No framework, no inline code (the CSP forbids
// it); DOM is built with textContent only, so stream data can never become
// markup.

const POLL_MS = 1000;
const HISTORY_MS = 5 * 60 * 1000;
const TAIL_ROWS = 200;
const LAG_MS = 1000;
const MiB = 1024 * 1024;
const DEFAULT_BUDGET = 2 * MiB; // enhanced fan-out: 2 MiB/s per consumer and shard
const TOKEN_KEY = 'sluice.token';
// The Kinesis errors that mean "who are you?": ask for a token.
const AUTH_ERRORS = new Set([
  'MissingAuthenticationTokenException', 'UnrecognizedClientException',
  'IncompleteSignatureException', 'InvalidSignatureException', 'AccessDeniedException',
  'AccessDenied', 'ExpiredTokenException',
]);

const $ = (sel) => document.querySelector(sel);

// ---- state ---------------------------------------------------------------------------------

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  needLogin: false,
  selected: null,
  stats: null,          // the last /v1/stats answer
  statsMissing: false,  // the gateway has no /v1/stats: fall back to ListStreams
  prev: new Map(),      // key -> { t, values } for differencing counters
  history: new Map(),   // stream -> { t: [], inRec: [], outRec: [], inMiB: [], outMiB: [] }
  rows: new Map(),      // stream -> { tr, cells, chart }
  shards: [],
  shardsAt: 0,
  consumers: [],
  consumersAt: 0,
  detailChart: null,
  tail: null,           // { ctrl, shard }
  polling: false,
};

// ---- the REST door ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, type, message) {
    super(message || type || `HTTP ${status}`);
    this.status = status;
    this.type = type || '';
  }
}

function authHeaders(extra = {}) {
  const h = { ...extra };
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  return h;
}

function isAuthError(e) {
  return e instanceof ApiError && (AUTH_ERRORS.has(e.type) || e.status === 401 || e.status === 403);
}

// Reads a failed answer's {"__type","message"} (or whatever it is).
async function errorOf(res) {
  let type = res.headers.get('x-amzn-ErrorType') || '';
  let message = '';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      type = j.__type || type;
      message = j.message || j.Message || '';
    } catch {
      message = text.slice(0, 300);
    }
  } catch { /* no body */ }
  return new ApiError(res.status, type.split(':')[0], message || `${res.status} ${res.statusText}`);
}

// One REST call. "body": an object (sent as JSON) or { raw, type }.
async function api(method, path, body) {
  const init = { method, headers: authHeaders(), cache: 'no-store' };
  if (body !== undefined) {
    if (body && body.raw !== undefined) {
      init.headers['Content-Type'] = body.type;
      init.body = body.raw;
    } else {
      // The server refuses other types on POST: they could come from any page.
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'NetworkError', `Cannot reach the gateway (${e.message})`);
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (isAuthError(err)) showLogin(err);
    throw err;
  }
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

const enc = encodeURIComponent;

// ---- messages --------------------------------------------------------------------------------

let noticeTimer;
function notice(text) {
  const el = $('#notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

function showError(e, what) {
  const el = $('#error');
  const type = e.type && e.type !== 'NetworkError' ? `${e.type}: ` : '';
  el.textContent = `${what ? `${what} failed. ` : ''}${type}${e.message}`;
  el.hidden = false;
}

function clearError() {
  $('#error').hidden = true;
}

// ---- sign in -----------------------------------------------------------------------------------

function showLogin(err) {
  state.needLogin = true;
  $('#login').hidden = false;
  $('#main').hidden = true;
  $('#login-error').textContent = state.token
    ? `The gateway refused this token (${err.type}: ${err.message}).`
    : `The gateway asks for credentials (${err.type}).`;
  if (document.activeElement === document.body || !document.activeElement) $('#token').focus();
  setLive(false, 'Sign in to continue');
}

function hideLogin() {
  state.needLogin = false;
  $('#login').hidden = true;
  $('#main').hidden = false;
  $('#login-error').textContent = '';
}

function setToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('#signout').hidden = !token;
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = $('#token').value.trim();
  if (!token) return;
  setToken(token);
  try {
    await api('GET', '/v1/streams');
  } catch (e) {
    if (!isAuthError(e)) showError(e, 'Signing in');
    $('#token').select();
    return;
  }
  $('#token').value = '';
  hideLogin();
  clearError();
  notice('Signed in.');
  poll();
});

$('#signout').addEventListener('click', () => {
  stopTail('Signed out.');
  setToken('');
  state.stats = null;
  clearStreams();
  notice('Signed out: the token is forgotten.');
  poll();
});

// ---- formatting ------------------------------------------------------------------------------

const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function fmtRate(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  return v >= 100 ? nf0.format(v) : nf1.format(v);
}
function fmtMiB(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  return v > 0 && v < 0.01 ? '<0.01' : nf2.format(v);
}
// Bytes per second in the unit that suits "scale" (MiB/s from 1 MiB/s up),
// so a value and its budget read in the same unit.
function fmtBps(v, scale, unit = true) {
  const big = scale >= MiB;
  const n = v / (big ? MiB : 1024);
  const text = n > 0 && n < 0.01 ? '<0.01' : nf2.format(n);
  return unit ? `${text} ${big ? 'MiB/s' : 'KiB/s'}` : text;
}
function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? nf1.format(n) : nf0.format(n)} ${u[i]}`;
}
function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
function fmtTime(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
function shortHash(s) {
  if (!s) return '';
  return s.length > 12 ? `${s.slice(0, 5)}…${s.slice(-4)}` : s;
}

// Small DOM helper: el('td', {className: 'num'}, 'text' | Node, ...).
function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'scope') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function setLive(ok, text) {
  const live = $('#live');
  live.textContent = text;
  live.classList.toggle('down', !ok);
}

// ---- rates -------------------------------------------------------------------------------------

// Per-second rates of the counters "values" (an object of cumulative
// numbers) under "key" since the previous call; undefined the first time or
// after a restart (a counter went down).
function rates(key, now, values) {
  const prev = state.prev.get(key);
  state.prev.set(key, { t: now, values });
  if (!prev || now <= prev.t) return undefined;
  const dt = (now - prev.t) / 1000;
  const out = {};
  for (const [k, v] of Object.entries(values)) {
    const d = v - (prev.values[k] ?? v);
    if (d < 0) return undefined;
    out[k] = d / dt;
  }
  return out;
}

function pushHistory(name, now, r) {
  let h = state.history.get(name);
  if (!h) {
    h = { t: [], inRec: [], outRec: [], inMiB: [], outMiB: [] };
    state.history.set(name, h);
  }
  h.t.push(now / 1000);
  h.inRec.push(r ? r.incoming_records : null);
  h.outRec.push(r ? r.outgoing_records : null);
  h.inMiB.push(r ? r.incoming_bytes / MiB : null);
  h.outMiB.push(r ? r.outgoing_bytes / MiB : null);
  while (h.t.length && h.t[0] < (now - HISTORY_MS) / 1000) {
    for (const k of Object.keys(h)) h[k].shift();
  }
  return h;
}

// ---- charts --------------------------------------------------------------------------------------

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function sparkline(container) {
  if (!window.uPlot) return null;
  return new window.uPlot({
    width: 180, height: 44,
    pxAlign: false,
    cursor: { show: false },
    legend: { show: false },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ show: false }, { show: false }],
    series: [
      {},
      { stroke: cssVar('--in'), width: 1.5, fill: `${cssVar('--in')}22`, points: { show: false } },
      { stroke: cssVar('--out'), width: 1.5, dash: [4, 3], points: { show: false } },
    ],
  }, [[], [], []], container);
}

function bigChart(container) {
  if (!window.uPlot) return null;
  const fg = cssVar('--muted');
  const grid = { stroke: cssVar('--line'), width: 1 };
  const axis = { stroke: fg, grid, ticks: grid };
  return new window.uPlot({
    width: Math.max(320, container.clientWidth || 800), height: 180,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      // Whole seconds: uPlot's default shows milliseconds for short spans.
      {
        ...axis,
        space: 70,
        incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300],
        values: (u, splits) => splits.map((v) => fmtTime(v * 1000).slice(0, 8)),
      },
      { ...axis, label: 'records/s', size: 60 },
    ],
    series: [
      { label: 'time', value: (u, v) => (v === null || v === undefined ? '—' : fmtTime(v * 1000).slice(0, 8)) },
      { label: 'in, records/s', stroke: cssVar('--in'), width: 2, fill: `${cssVar('--in')}22`, value: (u, v) => fmtRate(v) },
      { label: 'out, records/s', stroke: cssVar('--out'), width: 2, dash: [6, 4], value: (u, v) => fmtRate(v) },
    ],
  }, [[], [], []], container);
}

// ---- the streams table ---------------------------------------------------------------------------

function clearStreams() {
  for (const row of state.rows.values()) row.chart?.destroy();
  state.rows.clear();
  $('#streams tbody').replaceChildren();
}

function streamRow(name) {
  let row = state.rows.get(name);
  if (row) return row;
  const nameBtn = el('button', { type: 'button', className: 'link', textContent: name });
  nameBtn.setAttribute('aria-label', `Show stream ${name}`);
  nameBtn.addEventListener('click', () => select(name));
  const del = el('button', { type: 'button', className: 'secondary small', textContent: 'Delete' });
  del.setAttribute('aria-label', `Delete stream ${name}`);
  del.addEventListener('click', () => deleteStream(name));
  const cells = {
    name: el('th', { scope: 'row' }, nameBtn),
    status: el('td'),
    mode: el('td'),
    shards: el('td', { className: 'num' }),
    retention: el('td', { className: 'num' }),
    inRec: el('td', { className: 'num' }),
    inMiB: el('td', { className: 'num' }),
    outRec: el('td', { className: 'num' }),
    outMiB: el('td', { className: 'num' }),
    stored: el('td', { className: 'num' }),
    chart: el('td', { role: 'img', 'aria-label': `Records per second in and out of ${name}` }),
    actions: el('td', {}, del),
  };
  for (const [k, c] of Object.entries(cells)) c.dataset.col = k; // stable hooks for tests
  const tr = el('tr', { dataset: { stream: name } }, ...Object.values(cells));
  const spark = el('div', { className: 'spark' });
  cells.chart.append(spark);
  row = { tr, cells, chart: null, spark };
  state.rows.set(name, row);
  return row;
}

function statusBadge(status) {
  const cls = status === 'ACTIVE' ? 'ok' : status === 'DELETING' ? 'bad' : 'busy';
  return el('span', { className: `badge ${cls}`, textContent: status || '?' });
}

function renderStreams(list, now) {
  const tbody = $('#streams tbody');
  const seen = new Set();
  for (const s of list) {
    seen.add(s.name);
    const row = streamRow(s.name);
    const r = s.incoming_records === undefined ? undefined
      : rates(`stream:${s.name}`, now, {
        incoming_records: s.incoming_records, incoming_bytes: s.incoming_bytes,
        outgoing_records: s.outgoing_records, outgoing_bytes: s.outgoing_bytes,
      });
    const h = pushHistory(s.name, now, r);
    const c = row.cells;
    c.status.replaceChildren(statusBadge(s.status));
    c.mode.textContent = s.mode ?? '—';
    c.shards.textContent = s.shards === undefined ? '—' : `${s.open_shards} / ${s.shards}`;
    c.retention.textContent = s.retention_hours === undefined ? '—' : `${s.retention_hours} h`;
    c.inRec.textContent = fmtRate(r?.incoming_records);
    c.inMiB.textContent = fmtMiB(r && r.incoming_bytes / MiB);
    c.outRec.textContent = fmtRate(r?.outgoing_records);
    c.outMiB.textContent = fmtMiB(r && r.outgoing_bytes / MiB);
    c.stored.textContent = fmtBytes(s.stored_bytes);
    c.stored.dataset.bytes = s.stored_bytes ?? '';
    c.inRec.dataset.total = s.incoming_records ?? '';
    c.outRec.dataset.total = s.outgoing_records ?? '';
    row.tr.classList.toggle('selected', s.name === state.selected);
    if (!row.tr.isConnected) tbody.append(row.tr);
    if (!row.chart && row.spark.isConnected) row.chart = sparkline(row.spark);
    row.chart?.setData([h.t, h.inRec, h.outRec]);
  }
  for (const [name, row] of state.rows) {
    if (seen.has(name)) continue;
    row.chart?.destroy();
    row.tr.remove();
    state.rows.delete(name);
    state.history.delete(name);
  }
  // Keep the table in name order.
  const sorted = [...state.rows.keys()].sort();
  sorted.forEach((name, i) => {
    const tr = state.rows.get(name).tr;
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  $('#no-streams').hidden = list.length > 0;
}

// ---- polling -------------------------------------------------------------------------------------

async function fetchStats() {
  if (!state.statsMissing) {
    try {
      return await api('GET', '/v1/stats');
    } catch (e) {
      if (e.status !== 404) throw e;
      state.statsMissing = true; // an older gateway: names and statuses only
    }
  }
  const l = await api('GET', '/v1/streams');
  return {
    now: Date.now(),
    streams: (l.StreamSummaries || []).map((s) => ({
      name: s.StreamName, status: s.StreamStatus, mode: s.StreamModeDetails?.StreamMode,
    })),
    consumers: [],
  };
}

async function poll() {
  if (state.polling || state.needLogin) return;
  state.polling = true;
  try {
    const st = await fetchStats();
    state.stats = st;
    const now = st.now || Date.now();
    renderStreams(st.streams || [], now);
    const conns = st.connections ? Object.values(st.connections).reduce((a, b) => a + b, 0) : undefined;
    const bits = [];
    if (st.started) bits.push(`up ${fmtDuration(now - st.started)}`);
    if (conns !== undefined) bits.push(`${conns} connection${conns === 1 ? '' : 's'}`);
    if (st.subscriptions !== undefined) bits.push(`${st.subscriptions} subscription${st.subscriptions === 1 ? '' : 's'}`);
    if (state.statsMissing) bits.push('no /v1/stats on this gateway: rates unavailable');
    $('#server').textContent = bits.join(' · ');
    setLive(true, `Live · updated ${fmtTime(Date.now()).slice(0, 8)}`);
    if (state.selected) await renderDetail(now);
  } catch (e) {
    if (!isAuthError(e)) setLive(false, e.type === 'NetworkError' ? 'Gateway unreachable, retrying' : `Refresh failed: ${e.message}`);
  } finally {
    state.polling = false;
  }
}

// ---- the selected stream -----------------------------------------------------------------------

function select(name, focus = true) {
  if (state.selected !== name) {
    stopTail();
    state.shards = [];
    state.consumers = [];
    state.shardsAt = 0;
    state.consumersAt = 0;
    $('#tail tbody').replaceChildren();
    $('#shards tbody').replaceChildren();
    $('#consumers tbody').replaceChildren();
    $('#put-result').textContent = '';
  }
  state.selected = name;
  history.replaceState(null, '', name ? `#stream=${enc(name)}` : '#');
  for (const [n, row] of state.rows) row.tr.classList.toggle('selected', n === name);
  const d = $('#detail');
  d.hidden = !name;
  if (!name) return;
  $('#detail-heading').textContent = `Stream ${name}`;
  if (!state.detailChart) state.detailChart = bigChart($('#detail-chart'));
  renderDetail(state.stats?.now || Date.now());
  $('#detail-heading').setAttribute('tabindex', '-1');
  if (focus) $('#detail-heading').focus();
}

$('#close-detail').addEventListener('click', () => {
  const name = state.selected;
  select(null);
  state.rows.get(name)?.tr.querySelector('button')?.focus();
});

async function renderDetail(now) {
  const name = state.selected;
  const s = state.stats?.streams?.find((x) => x.name === name);
  if (!s && state.stats) {
    $('#detail-summary').textContent = 'This stream no longer exists.';
    return;
  }
  if (s) {
    const parts = [`${s.status}`];
    if (s.mode) parts.push(s.mode);
    if (s.shards !== undefined) parts.push(`${s.open_shards} open of ${s.shards} shards`);
    if (s.retention_hours !== undefined) parts.push(`retention ${s.retention_hours} h`);
    if (s.stored_bytes !== undefined) parts.push(`${fmtBytes(s.stored_bytes)} stored`);
    if (s.incoming_records !== undefined) parts.push(`${nf0.format(s.incoming_records)} records in, ${nf0.format(s.outgoing_records)} out since start`);
    if (s.write_throttled) parts.push(`${nf0.format(s.write_throttled)} writes throttled`);
    if (s.read_throttled) parts.push(`${nf0.format(s.read_throttled)} reads throttled`);
    $('#detail-summary').textContent = parts.join(' · ');
  }
  const h = state.history.get(name);
  const points = h ? h.inRec.filter((v) => v !== null).length : 0;
  $('#detail-chart').hidden = points < 2;
  $('#detail-chart-wait').hidden = points >= 2;
  if (state.detailChart && h && points >= 2) {
    const w = $('#detail-chart').clientWidth;
    if (w && Math.abs(w - state.detailChart.width) > 8) state.detailChart.setSize({ width: w, height: 180 });
    state.detailChart.setData([h.t, h.inRec, h.outRec]);
  }
  const t = Date.now();
  try {
    if (t - state.shardsAt > 5000) {
      state.shardsAt = t;
      const r = await api('GET', `/v1/streams/${enc(name)}/shards`);
      if (state.selected !== name) return;
      state.shards = r.Shards || [];
    }
    if (t - state.consumersAt > 3000) {
      state.consumersAt = t;
      const r = await api('GET', `/v1/streams/${enc(name)}/consumers`);
      if (state.selected !== name) return;
      state.consumers = r.Consumers || [];
    }
  } catch (e) {
    if (e.type === 'ResourceNotFoundException') return;
    throw e;
  }
  renderShards(s, now);
  renderConsumers(now);
}

function renderShards(s, now) {
  const stats = new Map((s?.shard_stats || []).map((x) => [x.id, x]));
  const monitored = !!s?.monitored;
  $('#shards-note').textContent = monitored
    ? 'Per-shard rates: enhanced monitoring is on for this stream.'
    : 'Per-shard rates appear when enhanced monitoring is on (EnableEnhancedMonitoring).';
  const tbody = $('#shards tbody');
  const rows = [];
  for (const sh of state.shards) {
    const open = !sh.SequenceNumberRange?.EndingSequenceNumber;
    const ss = stats.get(sh.ShardId);
    const r = ss && rates(`shard:${state.selected}:${sh.ShardId}`, now, {
      incoming_records: ss.incoming_records, outgoing_records: ss.outgoing_records,
    });
    const range = sh.HashKeyRange
      ? `${shortHash(sh.HashKeyRange.StartingHashKey)} – ${shortHash(sh.HashKeyRange.EndingHashKey)}` : '';
    const rangeCell = el('td', { className: 'mono', textContent: range });
    if (sh.HashKeyRange) rangeCell.title = `${sh.HashKeyRange.StartingHashKey} – ${sh.HashKeyRange.EndingHashKey}`;
    const tailBtn = el('button', { type: 'button', className: 'secondary small', textContent: 'Tail' });
    tailBtn.setAttribute('aria-label', `Tail ${sh.ShardId}`);
    tailBtn.addEventListener('click', () => {
      $('#tail-shard').value = sh.ShardId;
      startTail(sh.ShardId, $('#tail-from').value);
    });
    rows.push(el('tr', { dataset: { shard: sh.ShardId } },
      el('th', { scope: 'row', className: 'mono', textContent: sh.ShardId }),
      el('td', {}, el('span', { className: `badge ${open ? 'ok' : 'busy'}`, textContent: open ? 'open' : 'closed' })),
      rangeCell,
      el('td', { className: 'mono', textContent: sh.ParentShardId || '—' }),
      el('td', { className: 'mono', textContent: sh.AdjacentParentShardId || '—' }),
      el('td', { className: 'num', textContent: monitored ? fmtRate(r?.incoming_records) : '—' }),
      el('td', { className: 'num', textContent: monitored ? fmtRate(r?.outgoing_records) : '—' }),
      el('td', {}, tailBtn)));
  }
  tbody.replaceChildren(...rows);
  // The tail's shard list, keeping the choice.
  const sel = $('#tail-shard');
  const cur = sel.value;
  const ids = state.shards.map((x) => x.ShardId);
  if (ids.join() !== [...sel.options].map((o) => o.value).join()) {
    sel.replaceChildren(...state.shards.map((x) => el('option', {
      value: x.ShardId,
      textContent: `${x.ShardId}${x.SequenceNumberRange?.EndingSequenceNumber ? ' (closed)' : ''}`,
    })));
    if (ids.includes(cur)) sel.value = cur;
  }
}

function renderConsumers(now) {
  const name = state.selected;
  const live = new Map((state.stats?.consumers || []).filter((c) => c.stream === name).map((c) => [c.name, c]));
  const tbody = $('#consumers tbody');
  const rows = [];
  for (const c of state.consumers) {
    const cname = c.ConsumerName;
    const st = live.get(cname);
    const cr = st && rates(`consumer:${name}:${cname}`, now, { throttle: st.throttle_wait_seconds || 0 });
    const consumerThrottled = !!(cr && cr.throttle > 0);
    const subs = el('ul', { className: 'subs' });
    for (const sub of st?.subscriptions || []) {
      const r = rates(`sub:${name}:${cname}:${sub.shard}:${sub.started}`, now, { bytes: sub.pushed_bytes, records: sub.pushed_records });
      const budget = sub.rate_limit_bytes_per_s || DEFAULT_BUDGET;
      const bps = r ? r.bytes : 0;
      const lag = (sub.millis_behind_latest || 0) > LAG_MS;
      // The gateway says so when it knows; else: the consumer waited for
      // tokens since the last poll, or this delivery is at its budget.
      const throttled = typeof sub.throttled === 'boolean' ? sub.throttled
        : consumerThrottled || bps >= budget * 0.95;
      const flags = [];
      if (lag) flags.push(el('span', { className: 'badge warn', textContent: `⚠ lagging ${nf1.format(sub.millis_behind_latest / 1000)} s` }));
      if (throttled) flags.push(el('span', { className: 'badge bad', textContent: '‖ throttled' }));
      if (!flags.length) flags.push(el('span', { className: 'badge ok', textContent: 'keeping up' }));
      const meter = el('meter', { min: 0, max: budget / MiB, value: Math.min(bps, budget) / MiB, high: (budget * 0.8) / MiB, optimum: 0 });
      meter.setAttribute('aria-label', `Delivered on ${sub.shard} against the ${fmtBps(budget, budget)} budget`);
      subs.append(el('li', { className: lag || throttled ? 'alert' : '', dataset: { shard: sub.shard } },
        el('span', { className: 'mono', textContent: sub.shard }),
        el('span', { className: 'muted small', textContent: sub.format === 'sse' ? 'SSE' : 'event stream' }),
        meter,
        el('span', { className: 'small', textContent: `${fmtBps(bps, budget, false)} / ${fmtBps(budget, budget)} · ${fmtRate(r?.records)} rec/s` }),
        el('span', { className: 'small', textContent: `${nf0.format(sub.millis_behind_latest || 0)} ms behind` }),
        ...flags));
    }
    if (!subs.children.length) subs.append(el('li', { className: 'muted small', textContent: 'no live subscription' }));
    const dereg = el('button', { type: 'button', className: 'secondary small', textContent: 'Deregister' });
    dereg.setAttribute('aria-label', `Deregister consumer ${cname}`);
    dereg.addEventListener('click', () => deregister(name, cname));
    rows.push(el('tr', { dataset: { consumer: cname } },
      el('th', { scope: 'row' }, cname, el('div', { className: 'muted small mono', textContent: c.ConsumerARN || '' })),
      el('td', {}, statusBadge(c.ConsumerStatus)),
      el('td', {}, subs),
      el('td', {}, dereg)));
  }
  tbody.replaceChildren(...rows);
  $('#no-consumers').hidden = state.consumers.length > 0;
}

// ---- actions -------------------------------------------------------------------------------------

// Native <dialog>: modal, focus kept inside, Escape cancels. Resolves true on OK.
function confirmDialog(title, text, ok) {
  const d = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = ok;
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
  });
}

async function act(what, fn) {
  clearError();
  try {
    const r = await fn();
    return r;
  } catch (e) {
    if (!isAuthError(e)) showError(e, what);
    return undefined;
  }
}

$('#create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = $('#create-name').value.trim();
  const shards = Number($('#create-shards').value);
  const ok = await act(`Creating stream ${name}`, async () => {
    await api('POST', '/v1/streams', { StreamName: name, ShardCount: shards });
    return true;
  });
  if (ok) {
    notice(`Stream ${name} is being created (${shards} shard${shards === 1 ? '' : 's'}).`);
    $('#create-name').value = '';
    poll();
  }
});

async function deleteStream(name) {
  const yes = await confirmDialog(`Delete stream ${name}?`,
    `Every record in ${name} and all its consumers are deleted. This cannot be undone.`, 'Delete stream');
  if (!yes) {
    notice(`Stream ${name} kept.`);
    return;
  }
  const ok = await act(`Deleting stream ${name}`, async () => {
    await api('DELETE', `/v1/streams/${enc(name)}`, { EnforceConsumerDeletion: true });
    return true;
  });
  if (ok) {
    notice(`Stream ${name} is being deleted.`);
    if (state.selected === name) select(null);
    poll();
  }
}

$('#put-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = state.selected;
  const key = $('#put-key').value;
  const data = $('#put-data').value;
  const r = await act('Putting the record', () => api('POST',
    `/v1/streams/${enc(name)}/records?partitionKey=${enc(key)}`,
    { raw: new TextEncoder().encode(data), type: 'application/octet-stream' }));
  if (r) $('#put-result').textContent = `Stored in ${r.ShardId} as ${r.SequenceNumber}.`;
});

$('#register-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = state.selected;
  const cname = $('#register-name').value.trim();
  const r = await act(`Registering consumer ${cname}`, () =>
    api('POST', `/v1/streams/${enc(name)}/consumers`, { ConsumerName: cname }));
  if (r) {
    notice(`Consumer ${cname} registered (${r.Consumer?.ConsumerStatus || 'CREATING'}).`);
    $('#register-name').value = '';
    state.consumersAt = 0;
    poll();
  }
});

async function deregister(stream, cname) {
  const yes = await confirmDialog(`Deregister consumer ${cname}?`,
    `Its live subscriptions to ${stream} end now.`, 'Deregister');
  if (!yes) return;
  const ok = await act(`Deregistering ${cname}`, async () => {
    await api('DELETE', `/v1/streams/${enc(stream)}/consumers/${enc(cname)}`);
    return true;
  });
  if (ok) {
    notice(`Consumer ${cname} is being deregistered.`);
    state.consumersAt = 0;
    poll();
  }
}

// ---- the live tail ------------------------------------------------------------------------------

// Server-Sent Events by hand: fetch (unlike EventSource) can send the
// Authorization header. Calls onEvent({event, data, id}) per event.
async function readSse(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { event: 'message', data: [], id: undefined };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join('\n'), id: ev.id });
        ev = { event: 'message', data: [], id: undefined };
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'event') ev.event = v;
      else if (field === 'data') ev.data.push(v);
      else if (field === 'id') ev.id = v;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

// UTF-8 text (JSON pretty-printed), else hex: what a record's bytes look like.
function preview(b64) {
  let bytes;
  try {
    const bin = atob(b64 || '');
    bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  } catch {
    return { kind: 'hex', text: '(not base64)' };
  }
  try {
    const text = utf8.decode(bytes);
    // Control characters other than whitespace: show it as binary.
    if (/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) throw new Error('binary');
    try {
      const j = JSON.parse(text);
      if (j !== null && typeof j === 'object') return { kind: 'json', text: clip(JSON.stringify(j, null, 2), 2000) };
    } catch { /* not JSON */ }
    return { kind: 'text', text: clip(text, 2000) };
  } catch {
    const n = Math.min(bytes.length, 96);
    let hex = '';
    for (let i = 0; i < n; i++) hex += `${bytes[i].toString(16).padStart(2, '0')}${i % 16 === 15 ? '\n' : ' '}`;
    if (bytes.length > n) hex += `… (${bytes.length} bytes)`;
    return { kind: 'hex', text: hex.trim() };
  }
}

function clip(s, n) {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function tailRow(rec) {
  const p = preview(rec.Data);
  const arrived = rec.ApproximateArrivalTimestamp ? fmtTime(rec.ApproximateArrivalTimestamp * 1000) : '';
  const data = el('td', { className: 'data-cell' },
    el('span', { className: 'muted small', textContent: p.kind === 'json' ? 'JSON' : p.kind === 'hex' ? 'binary (hex)' : 'text' }),
    el('pre', { className: 'mono', textContent: p.text }));
  return el('tr', { className: 'fresh', dataset: { seq: rec.SequenceNumber } },
    el('td', { className: 'mono', textContent: rec.SequenceNumber }),
    el('td', { className: 'mono', textContent: rec.PartitionKey }),
    el('td', { className: 'mono', textContent: arrived }),
    data);
}

function tailStatus(text) {
  $('#tail-status').textContent = text;
}

function stopTail(why) {
  if (state.tail) {
    state.tail.ctrl.abort();
    state.tail = null;
    tailStatus(why || 'Stopped.');
  }
  $('#tail-start').disabled = false;
  $('#tail-stop').disabled = true;
}

async function startTail(shard, from) {
  stopTail();
  const stream = state.selected;
  if (!stream || !shard) return;
  const ctrl = new AbortController();
  const me = { ctrl, shard };
  state.tail = me;
  $('#tail-start').disabled = true;
  $('#tail-stop').disabled = false;
  $('#tail tbody').replaceChildren();
  tailStatus(`Connecting to ${shard}…`);
  let count = 0;
  try {
    const res = await fetch(`/v1/streams/${enc(stream)}/shards/${enc(shard)}/tail?from=${enc(from)}`, {
      headers: authHeaders({ Accept: 'text/event-stream' }),
      signal: ctrl.signal,
      cache: 'no-store',
    });
    if (!res.ok) {
      const err = await errorOf(res);
      if (isAuthError(err)) showLogin(err);
      throw err;
    }
    tailStatus(`Tailing ${shard} of ${stream} (from ${from}); waiting for records.`);
    const tbody = $('#tail tbody');
    await readSse(res.body, ({ event, data }) => {
      if (state.tail !== me) return;
      let j;
      try { j = JSON.parse(data); } catch { return; }
      if (event === 'record') {
        count++;
        tbody.prepend(tailRow(j));
        while (tbody.children.length > TAIL_ROWS) tbody.lastElementChild.remove();
        tailStatus(`Tailing ${shard} of ${stream}: ${nf0.format(count)} record${count === 1 ? '' : 's'} received (last ${TAIL_ROWS} shown).`);
      } else if (event === 'heartbeat') {
        if (!count) tailStatus(`Tailing ${shard} of ${stream}; no records yet (${nf0.format(j.MillisBehindLatest ?? 0)} ms behind latest).`);
      } else if (event === 'error') {
        tailStatus(`The tail ended: ${j.__type}: ${j.message}`);
        state.tail = null;
      } else if (event === 'end') {
        tailStatus(`The tail ended (${j.reason || j.message || 'shard closed or time limit'}).`);
        state.tail = null;
      }
    });
    if (state.tail === me) {
      state.tail = null;
      tailStatus(`The tail of ${shard} ended after ${nf0.format(count)} records; start it again to continue.`);
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
    if (state.tail === me) state.tail = null;
    tailStatus(`Tail failed: ${e.type ? `${e.type}: ` : ''}${e.message}`);
    if (!isAuthError(e)) showError(e, 'The live tail');
  } finally {
    if (!state.tail) {
      $('#tail-start').disabled = false;
      $('#tail-stop').disabled = true;
    }
  }
}

$('#tail-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  startTail($('#tail-shard').value, $('#tail-from').value);
});
$('#tail-stop').addEventListener('click', () => stopTail('Stopped.'));

// ---- start ---------------------------------------------------------------------------------------

setToken(state.token);
const m = /^#stream=(.+)$/.exec(location.hash);
if (m) {
  state.selected = decodeURIComponent(m[1]);
  $('#detail').hidden = false;
  $('#detail-heading').textContent = `Stream ${state.selected}`;
}
poll().then(() => {
  if (state.selected) select(state.selected, false);
});
setInterval(poll, POLL_MS);
window.addEventListener('resize', () => {
  if (state.detailChart && !$('#detail').hidden) {
    state.detailChart.setSize({ width: $('#detail-chart').clientWidth, height: 180 });
  }
});
