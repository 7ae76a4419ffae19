// Starting the real sluice binary for the node suites (tests/sdk and
// tests/browser), with no npm dependency so that either suite can use it
// with only its own node_modules installed.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const running = new Set();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch { /* gone */ } });

// Spawns `bin` with `args` (which must include --listen 127.0.0.1:0) and
// waits up to `waitMs` (10 s; 60 s on the jetstream backend, whose start
// waits for a replicated cluster to place its streams) for its "listening"
// log line. Resolves to { proc, port,
// lines (the last stderr lines, kept up to date), exited (a promise of
// { code, signal }) }; rejects with the log if it exits or stays silent.
export async function launch(bin, args, env = process.env,
  waitMs = args.includes('jetstream') ? 60000 : 10000) {
  const proc = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(proc);
  const lines = [];
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); }));
  const rl = createInterface({ input: proc.stderr });
  const port = await new Promise((resolve, reject) => {
    // Killed too: one that listened after the wait would outlive the test
    // (a test runner that times out a file ends it without 'exit' handlers).
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`sluice did not log "listening" within ${waitMs / 1000} s:\n${lines.join('\n')}`));
    }, waitMs);
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length > 2000) lines.splice(0, 1000);
      let ev;
      try { ev = JSON.parse(line); } catch { return; }
      if (ev.event === 'listening' && ev.port !== undefined) { clearTimeout(timer); resolve(Number(ev.port)); }
    });
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`sluice ${args.join(' ')} exited (${code ?? signal}) before listening:\n${lines.join('\n')}`)); });
  });
  return { proc, port, lines, exited };
}
