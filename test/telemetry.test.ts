/** ONNX Runtime's telemetry stays off: no mat-debug-<pid>.log in the temp folder after running the engine (issue 11). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, STORIES } from './helpers/fixtures.js';

test('running the engine leaves no ONNX Runtime telemetry log', () => {
  const script = `
    const { openCheckpoint } = await import('./src/model/checkpoint.ts');
    const { Engine } = await import('./src/engine/engine.ts');
    const engine = new Engine(openCheckpoint(${JSON.stringify(`${STORIES}hf`)}));
    await engine.forward([[1, 2, 3]], { logits: true });
    console.log(process.pid);`;
  const env = { ...process.env };
  delete env.ORT_DISABLE_TELEMETRY;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const pid = r.stdout.trim();
  assert.ok(!existsSync(join(tmpdir(), `mat-debug-${pid}.log`)) && !existsSync(`/tmp/mat-debug-${pid}.log`), `mat-debug-${pid}.log was written`);
});
