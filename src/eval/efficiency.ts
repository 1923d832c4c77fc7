/**
 * What a checkpoint costs to run: parameters by part and weight bytes (from the tensors on disk),
 * prefill throughput and per-token decoding latency with our engine (Decoder: resident weights,
 * key/value cache, one sequence), and the pruning time recorded beside a pruned checkpoint.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { argmax, Decoder } from '../engine/decoder.js';
import type { Checkpoint } from '../model/checkpoint.js';
import { countParams, type ParamCount } from '../model/param-count.js';
import { TIMING_FILE, type PruneTiming } from '../model/prune-files.js';
import { check } from '../util/errors.js';
import { isJsonObject, readUserJsonObject } from '../util/files.js';

export interface SpeedOptions {
  /** Prompt tokens of the prefill. */
  promptTokens: number;
  /** Tokens decoded after the prompt. */
  newTokens: number;
  /** Repetitions; the medians are reported. */
  repeats: number;
  threads?: number;
}

export interface Speed extends SpeedOptions {
  /** Reading the weights and building the sessions. */
  loadSeconds: number;
  /** Median prefill time of the prompt and its tokens per second. */
  prefillSeconds: number;
  prefillTokensPerSecond: number;
  /** Median time per decoded token (one step: all layers and the head on one new token). */
  msPerToken: number;
}

export interface Efficiency {
  /** Parameters by part, and the bytes of the weights as stored (storedBytes). */
  parameters: ParamCount;
  speed?: Speed;
  /** The wall time of the `compact prune` that wrote this checkpoint, if it did. */
  pruning?: PruneTiming;
}

export function staticEfficiency(ckpt: Checkpoint): Efficiency {
  const parameters = countParams(ckpt);
  const timingFile = join(ckpt.dir, TIMING_FILE);
  return { parameters, pruning: existsSync(timingFile) ? readPruneTiming(timingFile, ckpt.dir) : undefined };
}

/** compact-timing.json, checked when the checkpoint is opened (not after a whole evaluation). */
function readPruneTiming(file: string, dir: string): PruneTiming {
  const json = readUserJsonObject(file, { within: dir });
  const seconds = json.seconds;
  const valid =
    isJsonObject(seconds) &&
    typeof seconds.total === 'number' &&
    Object.values(seconds).every((s) => typeof s === 'number' && Number.isFinite(s) && s >= 0) &&
    Number.isSafeInteger(json.threads) &&
    typeof json.cpu === 'string';
  check(
    valid,
    `${file}: not a compact timing file ({"seconds": {"total": s, <phase>: s, …}, "threads": n, "cpu": "…"}; numbers of seconds ≥ 0); delete it or restore it`,
  );
  return json as unknown as PruneTiming;
}

/**
 * Prefill of `promptTokens` tokens, then `newTokens` greedy steps, `repeats` times. The prompt's
 * ids only need to be valid (the cost does not depend on them): they cycle through the vocabulary.
 */
export async function measureSpeed(ckpt: Checkpoint, options: SpeedOptions): Promise<Speed> {
  const loadStart = performance.now();
  const decoder = await Decoder.open(ckpt, { threads: options.threads });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const V = ckpt.spec.vocabSize;
  const prompt = Array.from({ length: options.promptTokens }, (_, i) => (i * 7919 + 1) % V);
  const prefill: number[] = [];
  const perToken: number[] = [];
  for (let r = 0; r < options.repeats; r++) {
    let clock = performance.now();
    let next = argmax(await decoder.prefill(prompt));
    prefill.push((performance.now() - clock) / 1000);
    clock = performance.now();
    for (let t = 0; t < options.newTokens; t++) next = argmax(await decoder.step(next));
    perToken.push((performance.now() - clock) / options.newTokens);
  }
  await decoder.release();
  const prefillSeconds = median(prefill);
  return {
    ...options,
    loadSeconds,
    prefillSeconds,
    prefillTokensPerSecond: options.promptTokens / prefillSeconds,
    msPerToken: median(perToken),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Peak resident set size of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
