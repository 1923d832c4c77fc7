/**
 * A short kill test (tools/fuzz/kill.ts; `npm run killtest` for the long campaign): signals at
 * random moments of prune --force over an existing output and of export. After each: the output is
 * the old one or the new one (never neither, never a mix), the input is untouched, and nothing the
 * killed run wrote is left after the next run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { killCampaign, killSummary } from '../tools/fuzz/kill.js';
import { DEFAULT_LIMITS } from '../tools/fuzz/run-cli.js';
import { WarmWorker } from '../tools/fuzz/warm-pool.js';

test('kill: SIGKILL/SIGINT/SIGTERM over prune --force and export never lose or half-write the output', async () => {
  // the killed runs are fresh processes; the others (references, next runs, checks) share one warm worker
  const worker = new WarmWorker('src', { ...DEFAULT_LIMITS, timeoutMs: 120_000 });
  const results = await killCampaign({
    trials: 4,
    seed: 3,
    flavour: 'src',
    scenarios: ['prune-force', 'export'],
    run: (args, env) => worker.run(args, env),
    startupMs: 1500,
  }).finally(() => worker.stop());
  const bad = results.filter((r) => r.cls !== 'ok');
  assert.deepEqual(
    bad.map((r) => `${r.id} ${r.cls}: ${r.scenario} ${r.signal} at ${r.delayMs} ms (${r.ended}, output ${r.output}) ${r.detail}`),
    [],
    killSummary(results),
  );
});
