/**
 * ONNX Runtime's telemetry stays off: no mat-debug-<pid>.log in the temp folder after running the
 * engine (issue 11). The child gets a fresh TMPDIR of its own, so a stale log of an earlier process
 * with the same pid cannot be mistaken for one (with ORT_DISABLE_TELEMETRY=0 the log does appear there).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, STORIES } from './helpers/fixtures.js';

test('running the engine leaves no ONNX Runtime telemetry log', () => {
  const script = `
    const { openCheckpoint } = await import('./src/model/checkpoint.ts');
    const { Engine } = await import('./src/engine/engine.ts');
    const engine = new Engine(openCheckpoint(${JSON.stringify(`${STORIES}hf`)}));
    await engine.forward([[1, 2, 3]], { logits: true });`;
  const temp = mkdtempSync(join(tmpdir(), 'compact-telemetry-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: temp };
    delete env.ORT_DISABLE_TELEMETRY;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readdirSync(temp).filter((f) => f.startsWith('mat-debug-')),
      [],
    );
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
});
