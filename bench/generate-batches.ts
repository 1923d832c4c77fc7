/**
 * node --import tsx bench/generate-batches.ts [--model models/tinystories-llama32k/hf --batches 1,4,10]
 *
 * Batched greedy decoding on a real model: the 10 GSM8K fixture questions (5-shot, lm-eval's
 * generate_until, 256 tokens each) decoded `b` at a time for each b of --batches; wall and CPU
 * seconds (CPU time is the steadier number on a shared machine).
 */
import { parseArgs } from 'node:util';
import { Decoder } from '../src/engine/decoder.js';
import { scoreGenerations } from '../src/eval/generation.js';
import { modelMaxLength } from '../src/eval/loglikelihood.js';
import { resolveTask } from '../src/eval/tasks/definitions.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { encode, loadTokenizer } from '../src/model/tokenizer.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/tinystories-llama32k/hf' },
    batches: { type: 'string', default: '1,4,10' },
    threads: { type: 'string', default: '2' },
  },
});
const dir = args.model!;
const ckpt = openCheckpoint(dir);
const tokenizer = loadTokenizer(dir);
const task = resolveTask('gsm8k');
const docs = task.load('test/fixtures/tasks');
const decoder = await Decoder.open(ckpt, { threads: Number(args.threads) });
const eos = ckpt.spec.raw.eos_token_id;
const eosIds = typeof eos === 'number' ? [eos] : [];
const model = {
  decoder,
  encode: (s: string) => encode(tokenizer, s),
  decode: (ids: number[]) => tokenizer.decode(ids, { skip_special_tokens: true }),
  eosIds,
  eosText: eosIds.length > 0 ? tokenizer.decode(eosIds, { skip_special_tokens: false }) : undefined,
  maxLength: modelMaxLength(ckpt.spec.raw),
};
for (const b of args.batches!.split(',').map(Number)) {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const scores = await scoreGenerations(model, docs, task.generation!, b);
  const c = process.cpuUsage(cpu);
  const tokens = scores.reduce((a, s) => a + s.output.generatedTokens, 0);
  console.log(
    `batch ${b}: ${docs.length} questions, ${tokens} tokens generated, ${((performance.now() - t0) / 1000).toFixed(1)} s wall, ${((c.user + c.system) / 1e6).toFixed(1)} s CPU`,
  );
}
await decoder.release();
