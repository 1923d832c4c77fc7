/**
 * Perplexity and bits per byte of a text. Protocol (default): encode the whole text once, cut
 * it into windows of `window` inputs starting every `stride` tokens (ids[s : s + window + 1]),
 * and score each next-token prediction not already scored by an earlier window.
 */
import { Engine } from '../engine/engine.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { encode, loadTokenizer } from '../model/tokenizer.js';
import { check, checkPositiveInteger } from '../util/errors.js';

export interface TextEvalOptions {
  window?: number;
  stride?: number;
  /** Windows per engine call (bounds the hidden-state memory). */
  windowsPerCall?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface TextMetrics {
  tokens: number;
  bytes: number;
  /** Next-token predictions scored. */
  predictions: number;
  windows: number;
  window: number;
  stride: number;
  totalNll: number;
  meanNll: number;
  perplexity: number;
  bitsPerByte: number;
}

interface Window {
  inputs: number[];
  targets: Int32Array;
}

/** Windows of the protocol: each scores the targets of positions not scored before. */
export function makeWindows(ids: number[], window: number, stride: number): Window[] {
  checkPositiveInteger(window, '--window');
  check(Number.isInteger(stride) && stride > 0 && stride <= window, `--stride must be an integer in [1, window=${window}], got ${stride}`);
  check(ids.length >= 2, `the text encodes to ${ids.length} token(s); at least 2 are needed to score a prediction`);
  const windows: Window[] = [];
  let scoredUpTo = 0; // predictions of ids[1..scoredUpTo] are done
  for (let start = 0; scoredUpTo < ids.length - 1; start += stride) {
    const inputs = ids.slice(start, Math.min(start + window, ids.length - 1));
    const targets = new Int32Array(inputs.length).fill(-1);
    for (let t = 0; t < inputs.length; t++) {
      const position = start + t + 1; // index of the predicted token
      if (position > scoredUpTo) targets[t] = ids[position];
    }
    scoredUpTo = start + inputs.length;
    windows.push({ inputs, targets });
  }
  return windows;
}

/**
 * The model's context (max_position_embeddings), if config.json gives one: a window never goes
 * past it, since positions beyond it were never trained (the CLI refuses an explicit longer --window;
 * the 512 default and internal evaluations — prune --eval-text, --auto, compare — are cut to it).
 */
export function modelContext(engine: Pick<Engine, 'ckpt'>): number | undefined {
  const context = engine.ckpt.spec.raw.max_position_embeddings;
  return typeof context === 'number' && context > 0 ? context : undefined;
}

export async function evaluateText(engine: Engine, ids: number[], bytes: number, options: TextEvalOptions = {}): Promise<TextMetrics> {
  const { window, stride } = windowing(engine, options);
  const windows = makeWindows(ids, window, stride);
  const { nll, predictions } = await scoreWindows(engine, windows, options.windowsPerCall ?? perCallOf(window), options.onProgress);
  const totalNll = checkedSum(nll);
  const meanNll = totalNll / predictions;
  // A finite but absurd loss (a flipped exponent bit makes one weight 1e30) overflows perplexity:
  // over 709 nats per token no model is being measured, only its broken forward pass.
  check(
    Number.isFinite(Math.exp(meanNll)),
    `the model's mean log-likelihood is −${meanNll.toPrecision(4)} nats per token, so its perplexity overflows: its weights or config.json make the forward pass produce absurd logits, so no result can be reported`,
  );
  return {
    tokens: ids.length,
    bytes,
    predictions,
    windows: windows.length,
    window,
    stride,
    totalNll,
    meanNll,
    perplexity: Math.exp(meanNll),
    bitsPerByte: totalNll / Math.LN2 / bytes,
  };
}

/** Bits (−log₂ likelihood of its tokens) of one text, and its UTF-8 bytes. */
export interface TextBits {
  bits: number;
  bytes: number;
}

/**
 * Bits of each text under the checkpoint in `dir`, with its own tokenizer and the default windows;
 * the windows of all texts run batched together (the split search's measure, per held-out piece).
 */
export async function checkpointTextBits(dir: string, texts: readonly string[], threads?: number): Promise<TextBits[]> {
  const engine = new Engine(openCheckpoint(dir), { threads });
  try {
    const tokenizer = loadTokenizer(dir);
    const { window, stride } = windowing(engine, {});
    const owner: number[] = []; // text index of each window
    const windows = texts.flatMap((text, i) => {
      const own = makeWindows(encode(tokenizer, text), window, stride);
      owner.push(...own.map(() => i));
      return own;
    });
    const { nll } = await scoreWindows(engine, windows, perCallOf(window));
    checkedSum(nll);
    const bits = texts.map(() => 0);
    nll.forEach((v, w) => (bits[owner[w]] += v / Math.LN2));
    return texts.map((text, i) => ({ bits: bits[i], bytes: Buffer.byteLength(text, 'utf8') }));
  } finally {
    await engine.release();
  }
}

/** The protocol's window and stride: --window cut to the model's context; stride defaults to the window. */
function windowing(engine: Engine, options: TextEvalOptions): { window: number; stride: number } {
  const requested = options.window ?? 512;
  const window = Math.min(requested, modelContext(engine) ?? Infinity);
  return { window, stride: options.stride == null || options.stride === requested ? window : options.stride };
}

/** Negative log-likelihood (nats) of each window's scored targets, and how many targets were scored. */
async function scoreWindows(
  engine: Engine,
  windows: readonly Window[],
  perCall: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ nll: Float64Array; predictions: number }> {
  const nll = new Float64Array(windows.length);
  let predictions = 0;
  for (let i = 0; i < windows.length; i += perCall) {
    const group = windows.slice(i, i + perCall);
    const { logprobs } = await engine.forward(
      group.map((w) => w.inputs),
      { targets: group.map((w) => w.targets) },
    );
    group.forEach((w, g) => {
      for (let t = 0; t < w.targets.length; t++) {
        if (w.targets[t] < 0) continue;
        nll[i + g] -= logprobs![g][t];
        predictions++;
      }
    });
    onProgress?.(Math.min(i + perCall, windows.length), windows.length);
  }
  return { nll, predictions };
}

/** Windows per engine call: 65,536 positions bound the hidden-state memory. */
const perCallOf = (window: number): number => Math.max(1, Math.floor(65536 / window));

/** The total negative log-likelihood, refused when it is no measurement. */
function checkedSum(nll: Float64Array): number {
  const totalNll = nll.reduce((a, b) => a + b, 0);
  // A NaN or infinite log-likelihood is never a measurement: weights or config values broke the
  // forward pass (an F16 overflow, a shifted data section, a degenerate norm or RoPE setting).
  check(
    Number.isFinite(totalNll),
    `the model's log-likelihood of the text is ${totalNll} (not finite): its weights or config.json make the forward pass produce NaN or infinity, so no bits per byte can be reported`,
  );
  return totalNll;
}

/** Metrics of `text` under the checkpoint in `dir`, with its own tokenizer and the default windows (prune --eval-text). */
export async function checkpointTextMetrics(
  dir: string,
  text: string,
  threads?: number,
  onProgress?: (done: number, total: number) => void,
): Promise<TextMetrics> {
  const engine = new Engine(openCheckpoint(dir), { threads });
  try {
    return await evaluateText(engine, encode(loadTokenizer(dir), text), Buffer.byteLength(text, 'utf8'), { onProgress });
  } finally {
    await engine.release();
  }
}
