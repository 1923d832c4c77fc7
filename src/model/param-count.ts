/** Where the parameters are, counted from real tensor shapes (the paper's scale analysis). */
import type { Checkpoint } from './checkpoint.js';
import { EMBED, LM_HEAD } from './tensor-names.js';

export const PARTS = ['embedding', 'lmHead', 'attention', 'ffn', 'norms', 'other'] as const;
export type Part = (typeof PARTS)[number];

export interface ParamCount {
  parts: Record<Part, number>;
  total: number;
  tied: boolean;
  /** Bytes of the weights as stored (dtype as on disk). */
  storedBytes: number;
}

export function partOf(name: string): Part {
  if (name === EMBED) return 'embedding';
  if (name === LM_HEAD) return 'lmHead';
  if (name.includes('.self_attn.')) return name.endsWith('_norm.weight') ? 'norms' : 'attention';
  if (name.includes('.mlp.')) return 'ffn';
  if (/norm\.weight$/.test(name)) return 'norms';
  return 'other';
}

export function countParams(ckpt: Checkpoint): ParamCount {
  const parts = Object.fromEntries(PARTS.map((p) => [p, 0])) as Record<Part, number>;
  let storedBytes = 0;
  for (const [name, info] of ckpt.tensors) {
    parts[partOf(name)] += info.shape.reduce((a, b) => a * b, 1);
    storedBytes += info.end - info.begin;
  }
  const total = PARTS.reduce((sum, p) => sum + parts[p], 0);
  return { parts, total, tied: ckpt.spec.tiedEmbeddings, storedBytes };
}
