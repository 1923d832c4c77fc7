/**
 * tokenizer.json (+ tokenizer_config.json) → llama.cpp's tokenizer metadata, so that llama.cpp
 * tokenizes exactly as the Hugging Face tokenizer does:
 * - byte-level BPE (Qwen2/2.5/3, Llama 3) → `gpt2` with merges and the pre-tokenizer named from its
 *   split regex (llama.cpp's converter hashes token ids instead, which any pruned vocabulary breaks);
 * - SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma) → `llama`, whose
 *   tokenizer merges the adjacent pair whose result has the highest score: scores are minus the
 *   rank of the first merge that makes each token, so they rank merges exactly as tokenizer.json does.
 */
import type { Tokenizer } from '@huggingface/tokenizers';
import { CompactError, check } from '../util/errors.js';
import {
  type AddedTokenJson,
  isObject,
  type JsonObject,
  mergeParts,
  requireBpeTokenizer,
  type TokenizerJson,
} from '../vocab/tokenizer-json.js';
import { indexVocabulary, tokenIdOf, type Vocabulary } from '../vocab/vocabulary.js';
import type { Metadata } from './gguf-file.js';

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Split regexes of byte-level pre-tokenizers, by llama.cpp's `tokenizer.ggml.pre` name. */
export const BYTE_LEVEL_PRE_TOKENIZERS: Record<string, string> = {
  'llama-bpe':
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

const SUPPORTED = `byte-level BPE with a ${Object.keys(BYTE_LEVEL_PRE_TOKENIZERS).join(' or ')} split, or GPT-2's ByteLevel; SentencePiece-style BPE with byte fallback`;

export interface TokenizerInput {
  tokenizer: unknown;
  tokenizerConfig?: JsonObject;
  config: JsonObject;
  /** The tokenizer itself, to read which specials encoding adds. */
  hf: Tokenizer;
  /** Embedding rows: the token list is padded to it as llama.cpp requires. */
  rows: number;
}

export interface TokenizerSummary {
  model: 'gpt2' | 'llama';
  pre: string;
  tokens: number;
  /** Embedding rows no token names (written as unused [PADn] tokens, as llama.cpp's converter does). */
  padded: number;
  /** Added tokens whose ids are past the embedding rows. */
  leftOut: string[];
}

export function tokenizerMetadata(input: TokenizerInput): { metadata: Metadata; summary: TokenizerSummary } {
  const tokenizer = requireBpeTokenizer({ tokenizer: input.tokenizer });
  const vocab = indexVocabulary(tokenizer);
  // Added tokens past the embedding (Gemma 3 1B's <image_soft_token>) cannot be run: left out, and said.
  const beyond = vocab.modelToken.findIndex((t, id) => id >= input.rows && t !== undefined);
  check(
    beyond < 0,
    () => `tokenizer.json: token ${JSON.stringify(vocab.modelToken[beyond])} has id ${beyond}, past the embedding's ${input.rows} rows`,
  );
  const leftOut = [...vocab.addedToken].filter(([id]) => id >= input.rows).map(([, content]) => content);
  const style = tokenizerStyle(tokenizer);
  const metadata: Metadata = new Map();
  metadata.set('tokenizer.ggml.model', { type: 'string', value: style.model });
  metadata.set('tokenizer.ggml.pre', { type: 'string', value: style.pre });

  const added = new Map((tokenizer.added_tokens ?? []).map((t) => [t.id, t]));
  const tokens: string[] = [];
  const types = new Int32Array(input.rows);
  for (let id = 0; id < input.rows; id++) {
    const text = added.get(id)?.content ?? vocab.modelToken[id];
    tokens.push(text ?? `[PAD${id}]`);
    types[id] = tokenType(id, text, vocab, added, style.model);
  }
  check(new Set(tokens).size === tokens.length, 'tokenizer.json: two ids share one token string, which llama.cpp cannot represent');
  metadata.set('tokenizer.ggml.tokens', { type: 'string[]', value: tokens });
  if (style.model === 'llama') {
    const missing = Array.from({ length: 256 }, (_, b) => byteToken(b)).filter((t) => !vocab.modelId.has(t));
    check(
      missing.length === 0,
      `tokenizer.json: byte-fallback pieces ${missing.slice(0, 4).join(' ')}${missing.length > 4 ? ' …' : ''} are missing; llama.cpp needs all 256`,
    );
    checkMergesArePairs(tokenizer, vocab);
    metadata.set('tokenizer.ggml.scores', { type: 'f32[]', value: mergeRankScores(vocab, input.rows) });
  }
  metadata.set('tokenizer.ggml.token_type', { type: 'i32[]', value: types });
  if (style.model === 'gpt2') {
    metadata.set('tokenizer.ggml.merges', {
      type: 'string[]',
      value: tokenizer.model.merges.map((m, rank) => mergeParts(m, rank).join(' ')),
    });
  }
  for (const [key, value] of specialTokenIds(vocab, input)) metadata.set(key, { type: 'u32', value });
  const adds = addedSpecials(input.hf);
  metadata.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: adds.bos });
  metadata.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: adds.eos });
  if (style.model === 'llama') metadata.set('tokenizer.ggml.add_space_prefix', { type: 'bool', value: style.addSpacePrefix });
  for (const [key, template] of chatTemplates(input.tokenizerConfig)) metadata.set(key, { type: 'string', value: template });
  const named = tokens.length - types.filter((t) => t === TOKEN_TYPE.unused).length;
  return { metadata, summary: { model: style.model, pre: style.pre, tokens: named, padded: input.rows - named, leftOut } };
}

type Style = { model: 'gpt2'; pre: string } | { model: 'llama'; pre: 'default'; addSpacePrefix: boolean };

/** Which llama.cpp tokenizer reproduces this tokenizer.json, from its pre-tokenizer and normalizer. */
function tokenizerStyle(t: TokenizerJson): Style {
  const pre = t.pre_tokenizer;
  const parts: JsonObject[] = isObject(pre)
    ? pre.type === 'Sequence' && Array.isArray(pre.pretokenizers)
      ? pre.pretokenizers.filter(isObject)
      : [pre]
    : [];
  const byteLevel = parts.find((p) => p.type === 'ByteLevel');
  if (byteLevel) {
    check(
      byteLevel.add_prefix_space !== true,
      `tokenizer.json: ByteLevel add_prefix_space is not supported by llama.cpp's gpt2 tokenizer; supported: ${SUPPORTED}`,
    );
    if (parts.length === 1 && byteLevel.use_regex !== false) return { model: 'gpt2', pre: 'gpt-2' };
    const split = parts.find((p) => p.type === 'Split');
    const regex = isObject(split?.pattern) ? split.pattern.Regex : undefined;
    const name = Object.entries(BYTE_LEVEL_PRE_TOKENIZERS).find(([, r]) => r === regex)?.[0];
    if (parts.length === 2 && split?.behavior === 'Isolated' && split.invert !== true && byteLevel.use_regex === false && name)
      return { model: 'gpt2', pre: name };
    throw new CompactError(
      `tokenizer.json: byte-level pre-tokenizer ${JSON.stringify(regex ?? pre).slice(0, 80)} has no llama.cpp name; supported: ${SUPPORTED}`,
    );
  }
  check(
    t.model.byte_fallback === true,
    `tokenizer.json: a BPE without byte-level pre-tokenization or byte fallback has no llama.cpp tokenizer; supported: ${SUPPORTED}`,
  );
  const metaspace = parts.find((p) => p.type === 'Metaspace');
  const unsupported = parts.filter(
    (p) => p.type !== 'Metaspace' && !(p.type === 'Split' && isObject(p.pattern) && p.pattern.String === ' '),
  );
  check(
    unsupported.length === 0,
    `tokenizer.json: pre-tokenizer ${String(unsupported[0]?.type)} is not supported with byte fallback; supported: ${SUPPORTED}`,
  );
  const normalizers = isObject(t.normalizer)
    ? Array.isArray(t.normalizer.normalizers)
      ? t.normalizer.normalizers.filter(isObject)
      : [t.normalizer]
    : [];
  const prepends = normalizers.some((n) => n.type === 'Prepend' && n.prepend === '▁');
  const metaspacePrepends = metaspace != null && metaspace.prepend_scheme !== 'never' && metaspace.add_prefix_space !== false;
  return { model: 'llama', pre: 'default', addSpacePrefix: prepends || metaspacePrepends };
}

function tokenType(
  id: number,
  text: string | undefined,
  vocab: Vocabulary,
  added: Map<number, AddedTokenJson>,
  model: Style['model'],
): number {
  if (text === undefined) return TOKEN_TYPE.unused;
  if (id === vocab.unkId) return TOKEN_TYPE.unknown;
  const a = added.get(id);
  if (a) return a.special === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  if (model === 'llama' && /^<0x[0-9A-F]{2}>$/.test(text)) return TOKEN_TYPE.byte;
  return TOKEN_TYPE.normal;
}

const byteToken = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/** Score of each id: −(rank of the first merge producing it); 0 for tokens no merge produces. */
function mergeRankScores(vocab: Vocabulary, rows: number): Float32Array {
  const scores = new Float32Array(rows);
  const seen = new Uint8Array(rows);
  for (let rank = 0; rank < vocab.merges.length / 3; rank++) {
    const result = vocab.merges[3 * rank + 2];
    if (result >= 0 && !seen[result]) {
      seen[result] = 1;
      scores[result] = -rank - 1;
    }
  }
  return scores;
}

/**
 * llama.cpp's SentencePiece tokenizer merges any adjacent pair whose concatenation is a token;
 * tokenizer.json merges only listed pairs. They agree when every split of a merged token into two
 * tokens is a listed merge (true of tokenizer.json files converted from SentencePiece, and kept by
 * compact's surgery). Checked rather than assumed.
 */
function checkMergesArePairs(t: TokenizerJson, vocab: Vocabulary): void {
  const listed = new Set<string>();
  t.model.merges.forEach((m, rank) => listed.add(mergeParts(m, rank).join(' ')));
  for (let rank = 0; rank < vocab.merges.length / 3; rank++) {
    const result = vocab.merges[3 * rank + 2];
    const text = result >= 0 ? vocab.modelToken[result] : undefined;
    if (text === undefined) continue;
    const chars = [...text];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (vocab.modelId.has(left) && vocab.modelId.has(right) && !listed.has(`${left} ${right}`)) {
        throw new CompactError(
          `tokenizer.json: ${JSON.stringify(left)} + ${JSON.stringify(right)} makes the token ${JSON.stringify(text)} but is not a listed merge; ` +
            "llama.cpp's SentencePiece tokenizer would merge it, so it cannot reproduce this tokenizer",
        );
      }
    }
  }
}

/** BOS/EOS/UNK/PAD ids: tokenizer_config.json's token strings, else config.json's ids. */
function specialTokenIds(vocab: Vocabulary, input: TokenizerInput): [string, number][] {
  const out: [string, number][] = [];
  for (const [role, key] of [
    ['bos', 'bos_token_id'],
    ['eos', 'eos_token_id'],
    ['unk', 'unknown_token_id'],
    ['pad', 'padding_token_id'],
  ] as const) {
    const named = input.tokenizerConfig?.[`${role}_token`];
    const text = typeof named === 'string' ? named : isObject(named) && typeof named.content === 'string' ? named.content : undefined;
    let id = text === undefined ? undefined : tokenIdOf(vocab, text);
    if (id === undefined) {
      const fromConfig = input.config[`${role}_token_id`];
      const first = Array.isArray(fromConfig) ? fromConfig[0] : fromConfig;
      if (Number.isInteger(first) && (first as number) >= 0 && (first as number) < input.rows) id = first as number;
    }
    if (role === 'unk' && id === undefined) id = vocab.unkId;
    if (id !== undefined) out.push([`tokenizer.ggml.${key}`, id]);
  }
  return out;
}

/** Whether encoding adds a BOS in front / an EOS at the end: asked of the tokenizer itself. */
function addedSpecials(hf: Tokenizer): { bos: boolean; eos: boolean } {
  const probe = 'a';
  const plain: number[] = hf.encode(probe, { add_special_tokens: false }).ids;
  const full: number[] = hf.encode(probe).ids;
  const at = full.findIndex((_, i) => plain.every((id, j) => full[i + j] === id));
  check(at >= 0, 'tokenizer.json: the post-processor changes the encoded text itself, which llama.cpp cannot reproduce');
  const after = full.length - at - plain.length;
  check(at <= 1 && after <= 1, 'tokenizer.json: the post-processor adds more than one token at an end, which llama.cpp cannot reproduce');
  return { bos: at === 1, eos: after === 1 };
}

/** tokenizer_config.json chat templates: one string, or a list of named ones. */
function chatTemplates(config: JsonObject | undefined): [string, string][] {
  const t = config?.chat_template;
  if (typeof t === 'string') return [['tokenizer.chat_template', t]];
  if (!Array.isArray(t)) return [];
  return t
    .filter((e): e is JsonObject => isObject(e) && typeof e.name === 'string' && typeof e.template === 'string')
    .map((e) => [e.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${String(e.name)}`, String(e.template)]);
}
