/**
 * node --import tsx bench/narrow-weights.ts [-- --model qwen2.5-0.5b --reps 7 --threads 2 --out .tmp/bench]
 *
 * What feeding weights as stored (bf16 bits, widened inside the graph) costs against feeding them
 * widened to f32 in JavaScript, on one layer and the LM head of a random-weight BF16 checkpoint
 * with a real model's shapes: a calibration/prefill layer call (4 × 512 tokens, statistics on), a
 * batched decoding step (8 rows, 256 cached positions), the head per position as the Engine runs
 * it (an f32 head 2^24 / V rows per run, a narrow one 4096), head runs of 2^24 / V rows and of a
 * decoding step's 8 rows. The two variants alternate, so load drifts hit both alike.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { buildHeadGraph } from '../src/engine/head-graph.js';
import { buildLayerGraph } from '../src/engine/layer-graph.js';
import { HEAD_PART_ROWS, type HeadWeights, loadHeadWeights, loadLayerWeights } from '../src/engine/layer-weights.js';
import { attentionMask, ropeTables } from '../src/engine/positions.js';
import { createSession } from '../src/engine/session.js';
import { loadF32, openCheckpoint } from '../src/model/checkpoint.js';
import { EMBED, LM_HEAD } from '../src/model/tensor-names.js';
import { median } from './common.js';
import { randomCheckpoint } from './real-shapes.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'qwen2.5-0.5b' },
    reps: { type: 'string', default: '7' },
    threads: { type: 'string', default: String(cpus().length) },
    out: { type: 'string', default: '.tmp/bench' },
  },
});
const reps = Number(args.reps);
const threads = Number(args.threads);
const ckpt = openCheckpoint(await randomCheckpoint(args.out, args.model!));
const spec = ckpt.spec;
const { hiddenSize: D, numKvHeads: K, headDim: hd, vocabSize: V } = spec;
const layerSpec = spec.layers[0];
const random = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.618) * 0.5);
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

/** Median ms per run of each variant, runs alternating between them after one warm-up each. */
async function compare(runs: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (const run of Object.values(runs)) await run();
  for (let r = 0; r < reps; r++) {
    for (const [name, run] of Object.entries(runs)) {
      const t0 = performance.now();
      await run();
      times[name].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

function report(what: string, ms: Record<string, number>): void {
  const [wide, narrow] = [ms.f32, ms.bf16];
  console.log(
    `  ${what.padEnd(44)} f32 ${wide.toFixed(1).padStart(7)} ms   bf16 ${narrow.toFixed(1).padStart(7)} ms   ${((narrow / wide - 1) * 100).toFixed(1).padStart(5)} %`,
  );
}

console.log(`bench narrow-weights — ${args.model}, ${threads} threads, median of ${reps}; ${cpus()[0].model}`);
const wide = loadLayerWeights(ckpt, 0, false);
const narrow = loadLayerWeights(ckpt, 0);
report(
  'read one layer (JS, f32 widens)',
  await compare({ f32: async () => loadLayerWeights(ckpt, 0, false), bf16: async () => loadLayerWeights(ckpt, 0) }),
);

// Prefill / calibration: B = 4 sequences of T = 512, act² and influence on.
{
  const [B, T] = [4, 512];
  const sessions = {
    f32: await createSession(buildLayerGraph(spec, { stats: true }), threads),
    bf16: await createSession(buildLayerGraph(spec, { stats: true, wires: narrow.wires }), threads),
  };
  const { cos, sin } = ropeTables(layerSpec.rope, hd, T);
  const feeds = {
    hidden: f32(random(B * T * D), [B, T, D]),
    cos: f32(cos, [T, 1, hd]),
    sin: f32(sin, [T, 1, hd]),
    mask: f32(attentionMask(layerSpec, T), [T, T]),
    statWeights: f32(new Float32Array(B * T).fill(1), [B, T, 1]),
  };
  const ms = await compare({
    f32: () => sessions.f32.run({ ...feeds, ...wide.feeds }),
    bf16: () => sessions.bf16.run({ ...feeds, ...narrow.feeds }),
  });
  report(`layer call, prefill ${B} × ${T} tokens + stats`, ms);
}

// Batched decoding step: R = 8 rows, P = 256 cached positions each.
{
  const [R, P] = [8, 256];
  const sessions = {
    f32: await createSession(buildLayerGraph(spec, { stats: false, cache: true, rowPositions: true }), threads, false),
    bf16: await createSession(
      buildLayerGraph(spec, { stats: false, cache: true, rowPositions: true, wires: narrow.wires }),
      threads,
      false,
    ),
  };
  const { cos, sin } = ropeTables(layerSpec.rope, hd, 1, P);
  const feeds = {
    hidden: f32(random(R * D), [R, 1, D]),
    cos: f32(
      new Float32Array(R * hd).map((_, i) => cos[i % hd]),
      [R, 1, 1, hd],
    ),
    sin: f32(
      new Float32Array(R * hd).map((_, i) => sin[i % hd]),
      [R, 1, 1, hd],
    ),
    mask: f32(new Float32Array(R * (P + 1)), [R, 1, 1, 1, P + 1]),
    pastKey: f32(random(R * K * P * hd), [R, K, P, hd]),
    pastValue: f32(random(R * K * P * hd), [R, K, P, hd]),
  };
  const ms = await compare({
    f32: () => sessions.f32.run({ ...feeds, ...wide.feeds }),
    bf16: () => sessions.bf16.run({ ...feeds, ...narrow.feeds }),
  });
  report(`layer call, decoding step of ${R} rows`, ms);
  console.log(
    `  → ${spec.numLayers} layers per step: f32 ${((ms.f32 * spec.numLayers) / 1000).toFixed(3)} s, bf16 ${((ms.bf16 * spec.numLayers) / 1000).toFixed(3)} s`,
  );
}

// LM head: the Engine's run of 2^24 / V rows, and a decoding step's 8 rows.
{
  const narrowHead = loadHeadWeights(ckpt);
  const wideHead: HeadWeights = {
    norm: narrowHead.norm,
    wire: 'float32',
    feeds: { head: f32(loadF32(ckpt, spec.tiedEmbeddings ? EMBED : LM_HEAD), [V, D]) },
  };
  const sessions = {
    f32: await createSession(buildHeadGraph(spec), threads),
    bf16: await createSession(buildHeadGraph(spec, narrowHead.wire), threads),
  };
  // The Engine's runs: an f32 head takes 2^24 / V rows per run, a narrow one HEAD_PART_ROWS (each run widens the whole head).
  const rows = { f32: Math.max(1, Math.floor(2 ** 24 / V)), bf16: HEAD_PART_ROWS };
  const feedsOf = (N: number) => ({ hidden: f32(random(N * D), [N, D]), targets: new ort.Tensor('int64', new BigInt64Array(N), [N, 1]) });
  const [f32Feeds, bf16Feeds] = [feedsOf(rows.f32), feedsOf(rows.bf16)];
  const perRun = await compare({
    f32: () => sessions.f32.run({ ...f32Feeds, norm: wideHead.norm, ...wideHead.feeds }, ['targetLogprobs', 'argmax']),
    bf16: () => sessions.bf16.run({ ...bf16Feeds, norm: narrowHead.norm, ...narrowHead.feeds }, ['targetLogprobs', 'argmax']),
  });
  report(`head per position, Engine runs (${rows.f32} | ${rows.bf16} rows)`, { f32: perRun.f32 / rows.f32, bf16: perRun.bf16 / rows.bf16 });
  for (const N of [Math.max(1, Math.floor(2 ** 24 / V)), 8]) {
    const feeds = { hidden: f32(random(N * D), [N, D]), targets: new ort.Tensor('int64', new BigInt64Array(N), [N, 1]) };
    const ms = await compare({
      f32: () => sessions.f32.run({ ...feeds, norm: wideHead.norm, ...wideHead.feeds }, ['targetLogprobs', 'argmax']),
      bf16: () => sessions.bf16.run({ ...feeds, norm: narrowHead.norm, ...narrowHead.feeds }, ['targetLogprobs', 'argmax']),
    });
    report(`head run, ${N} rows`, ms);
  }
}
console.log(`  peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB (both variants resident)`);
