/** ONNX Runtime sessions as the engine creates them. */
import { cpus } from 'node:os';
import ort from 'onnxruntime-node';
import { check } from '../util/errors.js';

// ONNX Runtime's own telemetry writes an empty mat-debug-<pid>.log to the temp folder and queues
// events in ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ for every session: a pruning tool must
// not report on its users' graphs. Read when the first session is created, so set here (a user's
// own setting wins).
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/**
 * A CPU session: intra-op threads (default: all cores), full graph optimisation. With `spin`
 * false, idle pool threads sleep instead of busy-waiting for the next run: when two sessions
 * alternate every few hundred microseconds (decoding: layers, then head), each pool's spinning
 * steals the cores the other needs (tinystories-llama32k: ~5.3 → ~3.9 ms per decoded token; no
 * change for the Engine's large batched runs). With `arena` false, a run's intermediates are freed
 * when it ends instead of staying in the session's arena (sessions run once in a while on large
 * inputs, such as compensation's: their arenas would add up in the peak RSS).
 */
export function createSession(model: Uint8Array, threads = cpus().length, spin = true, arena = true): Promise<ort.InferenceSession> {
  checkThreads(threads);
  return ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: arena,
    extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' } } },
  });
}

/** More threads than cores only slow ONNX Runtime down (--threads 99999 ran for minutes before doing anything). */
export function checkThreads(threads: number): void {
  const cores = cpus().length;
  check(
    Number.isInteger(threads) && threads >= 1 && threads <= cores,
    `--threads must be an integer in [1, ${cores}] (this machine's logical CPUs), got ${threads}`,
  );
}
