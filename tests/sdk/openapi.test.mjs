// api/openapi.yaml passes a linter (Redocly CLI, its recommended ruleset;
// errors fail, warnings are printed), and documents exactly the routes the
// server has: the set of "METHOD /path" in the file equals what
// `sluice --print-routes` prints. The Kinesis door (POST / with X-Amz-Target)
// is not a REST route: it is left out on both sides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HERE, REPO, binPath } from './lib/harness.mjs';

const SPEC = process.env.SLUICE_OPENAPI || join(REPO, 'api', 'openapi.yaml');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

test('api/openapi.yaml passes redocly lint (recommended rules)', () => {
  const redocly = join(HERE, '..', 'node_modules', '.bin', 'redocly');
  assert.ok(existsSync(redocly), 'redocly CLI missing: run `npm ci --prefix tests/sdk`');
  const r = spawnSync(redocly, ['lint', SPEC, '--format=stylish', '--config', join(HERE, '..', 'redocly.yaml')], {
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
  });
  const out = `${r.stdout}\n${r.stderr}`.replace(/\u001b\[[0-9;]*m/g, '');
  const problems = out.split('\n').filter((l) => /^\s*\d+:\d+\s|Validation failed|error|Error/.test(l) && !/[║╔╚]/.test(l));
  assert.equal(r.status, 0, `redocly lint failed (exit ${r.status}):\n${problems.join('\n')}`);
});

test('REST routes in api/openapi.yaml equal `sluice --print-routes`', () => {
  const spec = parse(readFileSync(SPEC, 'utf8'));
  const documented = new Set();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const m of METHODS) if (item[m]) documented.add(`${m.toUpperCase()} ${path}`);
  }
  let out;
  try {
    out = execFileSync(binPath(), ['--print-routes'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    assert.fail(`sluice --print-routes failed (exit ${e.status}): ${String(e.stderr || e.message).trim()}\n` +
      'expected one line per route, "METHOD /path/{param}"');
  }
  const KINESIS_DOOR = 'POST /';
  documented.delete(KINESIS_DOOR);
  const served = new Set(out.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l && l !== KINESIS_DOOR));
  assert.ok(served.size > 0, 'sluice --print-routes printed no routes');
  for (const r of served) assert.match(r, /^(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE) \/\S*$/, `route line "${r}"`);
  const missingInSpec = [...served].filter((r) => !documented.has(r)).sort();
  const missingInServer = [...documented].filter((r) => !served.has(r)).sort();
  assert.deepEqual({ missingInSpec, missingInServer }, { missingInSpec: [], missingInServer: [] },
    `routes differ (served: ${[...served].sort().join(', ')})`);
});
