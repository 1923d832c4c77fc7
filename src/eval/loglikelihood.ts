/**
 * log p(continuation | context) for many (context, continuation) pairs, as LM-Evaluation-Harness's
 * HF causal LM computes it (lm_eval/api/model.py _encode_pair, lm_eval/models/huggingface.py
 * _loglikelihood_tokens):
 *   * trailing whitespace of the context moves to the front of the continuation;
 *   * context + continuation is encoded as one string (special tokens as the tokenizer adds them),
 *     the context alone too, and the continuation is what follows the context's token count;
 *   * the model reads (context + continuation)[-(L+1):][:-1] (left-truncated to its max length L)
 *     and the continuation's tokens are scored at the last positions: log-likelihood = Σ log p,
 *     greedy = every continuation token is the argmax at its position. A continuation longer
 *     than L (lm-eval fails on one) has only its last L tokens scored.
 * The inputs of one document go into a prefix tree, so the prompt shared by its answers runs
 * once, and identical inputs (one-token answers) merge, the engine returning several target
 * log-probabilities per position (targetGroups); trees of several documents are packed into one
 * engine sequence (ForwardRequest.parents: each token attends to its ancestors only).
 */
import type { Engine } from '../engine/engine.js';
import { CompactError, check, checkPositiveInteger } from '../util/errors.js';
import { pyRstrip } from './tasks/text.js';

export interface EncodedPair {
  context: number[];
  continuation: number[];
}

export interface LoglikelihoodResult {
  /** Σ log p(continuation token | prefix), natural log. */
  logprob: number;
  /** Every continuation token is the model's argmax at its position. */
  isGreedy: boolean;
  /** Tokens scored (the continuation's). */
  tokens: number;
  /** The input was cut from the left to fit the model's maximum length. */
  truncated: boolean;
}

export interface Timings {
  tokenizeMs: number;
  loadMs: number;
  layersMs: number;
  headMs: number;
}

/** lm-eval's _encode_pair for causal models. */
export function encodePair(encode: (text: string) => number[], context: string, continuation: string): EncodedPair {
  const stripped = pyRstrip(context);
  if (stripped.length < context.length) {
    continuation = context.slice(stripped.length) + continuation;
    context = stripped;
  }
  const whole = encode(context + continuation);
  const contextIds = encode(context);
  return { context: contextIds, continuation: whole.slice(contextIds.length) };
}

/** lm-eval's max_length: n_positions, max_position_embeddings or n_ctx of config.json, else the tokenizer's model_max_length, else 2048. */
export function modelMaxLength(config: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}): number {
  for (const key of ['n_positions', 'max_position_embeddings', 'n_ctx']) {
    const v = config[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  }
  const m = tokenizerConfig.model_max_length;
  if (typeof m === 'number' && Number.isSafeInteger(m) && m > 0 && m < 1e30) return m;
  return 2048;
}

export interface ScoreOptions {
  /** The model's maximum input length (lm-eval's max_length). */
  maxLength: number;
  /** Per pair, its group (e.g. its document): a group's inputs share their common prefix in one token tree. Default: each pair alone. */
  groups?: number[];
  /** Tokens per packed tree of groups (default 512); 0: no trees, one chain per distinct input. */
  packTokens?: number;
  /** Tokens per engine.forward call: bounds the hidden states kept between layers (default: 256 MB of them). */
  tokensPerCall?: number;
  /** Names each pair in messages (e.g. "file:line"). */
  describe?: (index: number) => string;
  onProgress?: (done: number, total: number) => void;
}

/** What one engine sequence holds: tokens, their tree (−1: a root), and the targets asked at each token. */
interface Pack {
  tokens: number[];
  parents: number[];
  /** Per token, the distinct target tokens whose log-probability is wanted there. */
  targets: Map<number, number[]>;
}

/** A prefix tree of token sequences: node i holds tokens[i] after node parents[i]. */
class Trie {
  readonly tokens: number[] = [];
  readonly parents: number[] = [];
  private readonly children = new Map<string, number>(); // "parent:token" → node

  /** Adds a path; returns its node per position. */
  insert(ids: number[]): number[] {
    let node = -1;
    return ids.map((token) => {
      const key = `${node}:${token}`;
      let child = this.children.get(key);
      if (child === undefined) {
        child = this.tokens.push(token) - 1;
        this.parents.push(node);
        this.children.set(key, child);
      }
      return (node = child);
    });
  }
}

export interface ScoreResult {
  results: LoglikelihoodResult[];
  /** Engine sequences run (packed trees, or distinct inputs) and their tokens. */
  sequences: number;
  inputTokens: number;
  timings: Omit<Timings, 'tokenizeMs'>;
}

/**
 * Scores every pair. The inputs of each group go into one prefix tree (a prompt is run once for
 * all its answers; identical inputs merge), trees are packed into sequences of about packTokens
 * tokens, and the sequences run longest first, many per engine call, layer by layer.
 */
export async function scorePairs(engine: Engine, pairs: EncodedPair[], options: ScoreOptions): Promise<ScoreResult> {
  const L = options.maxLength;
  const describe = options.describe ?? ((i: number) => `request ${i}`);
  const packTokens = options.packTokens ?? 512;
  check(Number.isSafeInteger(packTokens) && packTokens >= 0, `packTokens must be a non-negative integer, got ${packTokens}`);
  const inputs = pairs.map((pair, i) => {
    if (pair.context.length === 0) throw new CompactError(`${describe(i)}: the context encodes to no tokens`);
    if (pair.continuation.length === 0) throw new CompactError(`${describe(i)}: the continuation encodes to no tokens`);
    const whole = pair.context.concat(pair.continuation);
    // The window predicts at most its last L tokens: a longer continuation loses its first tokens.
    return { input: whole.slice(-(L + 1)).slice(0, -1), scored: pair.continuation.slice(-L), truncated: whole.length > L + 1 };
  });

  // Prefix trees: per group (trees), or per distinct input (chains).
  const trees = new Map<string, Trie>();
  const nodesOf = inputs.map(({ input }, i) => {
    const key = packTokens > 0 ? `g${options.groups?.[i] ?? `p${i}`}` : input.join(',');
    let trie = trees.get(key);
    if (!trie) trees.set(key, (trie = new Trie()));
    return { trie, nodes: trie.insert(input) };
  });
  // Pack the trees into sequences (a tree larger than packTokens goes alone).
  const packs: Pack[] = [];
  const placement = new Map<Trie, { pack: number; offset: number }>();
  for (const trie of trees.values()) {
    let last = packs.at(-1);
    if (!last || packTokens === 0 || (last.tokens.length > 0 && last.tokens.length + trie.tokens.length > packTokens)) {
      packs.push((last = { tokens: [], parents: [], targets: new Map() }));
    }
    const offset = last.tokens.length;
    placement.set(trie, { pack: packs.length - 1, offset });
    last.tokens.push(...trie.tokens);
    for (const p of trie.parents) last.parents.push(p < 0 ? -1 : p + offset);
  }
  // Each continuation token is a target at the node of the position that predicts it.
  const plans = inputs.map(({ scored, truncated }, i) => {
    const { trie, nodes } = nodesOf[i];
    const { pack, offset } = placement.get(trie)!;
    const at = nodes.slice(nodes.length - scored.length).map((node) => node + offset);
    at.forEach((node, j) => {
      const list = packs[pack].targets.get(node) ?? [];
      if (!list.includes(scored[j])) list.push(scored[j]);
      packs[pack].targets.set(node, list);
    });
    return { pack, at, tokens: scored, truncated };
  });

  const D = engine.spec.hiddenSize;
  const perCall = options.tokensPerCall ?? Math.max(4096, Math.floor(2 ** 28 / (4 * D)));
  checkPositiveInteger(perCall, 'tokensPerCall');
  const order = packs.map((_, i) => i).sort((a, b) => packs[b].tokens.length - packs[a].tokens.length || a - b);
  const logprobs: Float32Array[] = new Array(packs.length); // per pack [T, K]
  const groups: number[] = new Array(packs.length); // K of the call that ran it
  const argmax: Int32Array[] = new Array(packs.length);
  const timings = { loadMs: 0, layersMs: 0, headMs: 0 };
  let done = 0;
  for (let start = 0; start < order.length;) {
    let tokens = 0;
    let end = start;
    while (end < order.length && (end === start || tokens + packs[order[end]].tokens.length <= perCall))
      tokens += packs[order[end++]].tokens.length;
    const members = order.slice(start, end);
    let K = 1; // the most distinct targets any position of this call asks for
    for (const s of members) for (const list of packs[s].targets.values()) K = Math.max(K, list.length);
    const targets = members.map((s) => {
      const t = new Int32Array(packs[s].tokens.length * K).fill(-1); // [T, K]
      for (const [node, list] of packs[s].targets) list.forEach((token, k) => (t[node * K + k] = token));
      return t;
    });
    const before = done;
    const result = await engine.forward(
      members.map((s) => packs[s].tokens),
      {
        targets,
        targetGroups: K,
        ...(packTokens > 0 ? { parents: members.map((s) => Int32Array.from(packs[s].parents)) } : {}),
        onLayer: (layer, layers) => options.onProgress?.(before + Math.floor((members.length * layer) / layers), order.length),
      },
    );
    members.forEach((s, m) => {
      logprobs[s] = result.logprobs![m];
      argmax[s] = result.argmax![m];
      groups[s] = K;
    });
    timings.loadMs += result.timings.loadMs;
    timings.layersMs += result.timings.layersMs;
    timings.headMs += result.timings.headMs;
    done += members.length;
    start = end;
  }

  const results = plans.map((plan) => {
    const K = groups[plan.pack];
    let logprob = 0;
    let isGreedy = true;
    plan.at.forEach((node, j) => {
      const k = packs[plan.pack].targets.get(node)!.indexOf(plan.tokens[j]);
      logprob += logprobs[plan.pack][node * K + k];
      if (argmax[plan.pack][node] !== plan.tokens[j]) isGreedy = false;
    });
    return { logprob, isGreedy, tokens: plan.tokens.length, truncated: plan.truncated };
  });
  return { results, sequences: packs.length, inputTokens: packs.reduce((a, p) => a + p.tokens.length, 0), timings };
}
