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
 * the text is cut at the first occurrence either way.
 */
import type { Decoder } from '../engine/decoder.js';
import { check } from '../util/errors.js';
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
  const maxContext = model.maxLength - config.maxGenToks;
  check(maxContext > 0, `max_gen_toks ${config.maxGenToks} must be less than the model's maximum length ${model.maxLength}`);
  const ids = model.encode(context);
  const prompt = ids.length > maxContext ? ids.slice(-maxContext) : ids;
  const until = stopStrings(config, model.eosText);
  const eos = new Set(model.eosIds);
  let stoppedBy: GenerationOutput['stoppedBy'] = 'max_gen_toks';
  const generated = await model.decoder.generate(prompt, config.maxGenToks, (g) => {
    if (eos.has(g[g.length - 1])) stoppedBy = 'eos';
    else if (until.some((term) => term.length > 0 && model.decode(g).includes(term))) stoppedBy = 'until';
    else return false;
    return true;
  });
  return { text: cutAtStops(model.decode(generated), until), promptTokens: prompt.length, generatedTokens: generated.length, ids: generated, truncated: prompt.length < ids.length, stoppedBy };
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
  const output = await generateUntil(model, doc.context!, config);
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
