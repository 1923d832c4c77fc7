/**
 * generate_until tasks as LM-Evaluation-Harness's HF model runs them (lm_eval/models/huggingface.py
 * generate_until, 0.4.13), one sequence at a time with the key/value-cached Decoder:
 *   * the context is encoded as the tokenizer does by default (e.g. Llama's BOS) and cut from the
 *     left to max_length − max_gen_toks tokens (tok_batch_encode's left_truncate_len; counted);
 *   * greedy decoding (argmax, first index on ties) of at most max_gen_toks tokens, stopping at
 *     the model's EOS token (transformers' generate) or once a stop string appears in the decoded
 *     continuation (lm-eval's stop-sequence criterion; the model's EOS text is added to `until`);
 *   * the continuation alone is decoded with special tokens skipped and cut before the first
 *     occurrence of each stop string in turn (postprocess_generated_text);
 *   * each filter (regex, take_first) extracts the answer, and exact_match compares it with the
 *     reference after the task's regexes_to_ignore and ignore_case (exact_match_hf_evaluate).
 * Stopping as soon as a stop string shows gives the same text as lm-eval, which may stop later:
 * the text is cut at the first occurrence either way. Several documents are decoded together
 * (Decoder.generateBatch), each exactly as it would be alone.
 */
import type { Decoder } from '../engine/decoder.js';
import { check, checkPositiveInteger } from '../util/errors.js';
import { meanStderr, type MeanWithStderr } from './multiple-choice.js';
import type { GenerationConfig, TaskDoc } from './tasks/task.js';

export interface GenerationModel {
  decoder: Decoder;
  encode(text: string): number[];
  /** Token ids → text, special tokens skipped. */
  decode(ids: number[]): string;
  /** Token ids that end generation (generation_config.json's eos_token_id, else config.json's). */
  eosIds: number[];
  /** The EOS token's text (lm-eval adds it to the stop strings). */
  eosText?: string;
  /** lm-eval's max_length. */
  maxLength: number;
}

export interface GenerationOutput {
  /** The continuation after stop-string cutting: what the filters read. */
  text: string;
  /** Prompt tokens the model read (after left truncation) and tokens generated. */
  promptTokens: number;
  generatedTokens: number;
  /** The generated token ids (EOS included when it ended generation). */
  ids: number[];
  truncated: boolean;
  stoppedBy: 'eos' | 'until' | 'max_gen_toks';
}

/** lm-eval's handle_stop_sequences: the task's stop strings, plus the EOS text if it is not among them. */
export function stopStrings(config: GenerationConfig, eosText: string | undefined): string[] {
  const until = [...config.until];
  if (eosText !== undefined && !until.includes(eosText)) until.push(eosText);
  return until;
}

/** postprocess_generated_text: cut at the first occurrence of each (non-empty) stop string, in turn. */
export function cutAtStops(text: string, until: string[]): string {
  for (const term of until) if (term.length > 0) text = text.split(term)[0];
  return text;
}

/** Greedy continuation of one context with lm-eval's truncation and stopping. */
export async function generateUntil(model: GenerationModel, context: string, config: GenerationConfig): Promise<GenerationOutput> {
  return (await generateUntilBatch(model, [context], config))[0];
}

/**
 * Greedy continuations of several contexts decoded together (Decoder.generateBatch: one layer
 * call per step for all unfinished sequences, each seeing only its own keys), each as lm-eval
 * would generate it alone.
 */
export async function generateUntilBatch(
  model: GenerationModel,
  contexts: string[],
  config: GenerationConfig,
): Promise<GenerationOutput[]> {
  const maxContext = model.maxLength - config.maxGenToks;
  check(maxContext > 0, `max_gen_toks ${config.maxGenToks} must be less than the model's maximum length ${model.maxLength}`);
  const encoded = contexts.map((c) => model.encode(c));
  const prompts = encoded.map((ids) => (ids.length > maxContext ? ids.slice(-maxContext) : ids));
  const until = stopStrings(config, model.eosText);
  const eos = new Set(model.eosIds);
  const stoppedBy: GenerationOutput['stoppedBy'][] = contexts.map(() => 'max_gen_toks');
  const generated = await model.decoder.generateBatch(prompts, config.maxGenToks, (i, g) => {
    if (eos.has(g[g.length - 1])) stoppedBy[i] = 'eos';
    else if (until.some((term) => term.length > 0 && model.decode(g).includes(term))) stoppedBy[i] = 'until';
    else return false;
    return true;
  });
  return generated.map((ids, i) => ({
    text: cutAtStops(model.decode(ids), until),
    promptTokens: prompts[i].length,
    generatedTokens: ids.length,
    ids,
    truncated: prompts[i].length < encoded[i].length,
    stoppedBy: stoppedBy[i],
  }));
}

/** exact_match_hf_evaluate for one pair: regexes removed from both, then case folded if asked. */
export function exactMatch(prediction: string, reference: string, options: GenerationConfig['exactMatch']): number {
  let p = prediction;
  let r = reference;
  for (const re of options.regexesToIgnore) {
    p = p.replace(re, '');
    r = r.replace(re, '');
  }
  if (options.ignoreCase) {
    p = p.toLowerCase();
    r = r.toLowerCase();
  }
  return +(p === r);
}

export interface GenerationScore {
  output: GenerationOutput;
  /** Per filter: the extracted answer and its exact match. */
  filtered: Record<string, string>;
  exactMatch: Record<string, number>;
}

export async function scoreGeneration(model: GenerationModel, doc: TaskDoc, config: GenerationConfig): Promise<GenerationScore> {
  return scoreOutput(await generateUntil(model, doc.context!, config), doc, config);
}

/** The documents' generations, `batchSize` sequences decoded together, then filtered and scored. */
export async function scoreGenerations(
  model: GenerationModel,
  docs: TaskDoc[],
  config: GenerationConfig,
  batchSize = 8,
  onProgress?: (done: number, total: number) => void,
): Promise<GenerationScore[]> {
  checkPositiveInteger(batchSize, 'the generation batch size');
  const scores: GenerationScore[] = [];
  for (let start = 0; start < docs.length; start += batchSize) {
    const batch = docs.slice(start, start + batchSize);
    const outputs = await generateUntilBatch(
      model,
      batch.map((d) => d.context!),
      config,
    );
    outputs.forEach((output, i) => scores.push(scoreOutput(output, batch[i], config)));
    onProgress?.(scores.length, docs.length);
  }
  return scores;
}

function scoreOutput(output: GenerationOutput, doc: TaskDoc, config: GenerationConfig): GenerationScore {
  const filtered: Record<string, string> = {};
  const scores: Record<string, number> = {};
  for (const filter of config.filters) {
    filtered[filter.name] = filter.apply(output.text);
    scores[filter.name] = exactMatch(filtered[filter.name], doc.target, config.exactMatch);
  }
  return { output, filtered, exactMatch: scores };
}

/** exact_match per filter: mean and sample standard error over the documents. */
export function aggregateExactMatch(scores: GenerationScore[], config: GenerationConfig): Record<string, MeanWithStderr> {
  return Object.fromEntries(config.filters.map((f) => [f.name, meanStderr(scores.map((s) => s.exactMatch[f.name]))]));
}
