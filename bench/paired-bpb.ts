/**
 * Bits per byte of two checkpoints on the same text, cut into the split search's pieces (≈ 32 at
 * line starts), their difference and its standard error paired over the pieces — the split
 * search's own measure (src/prune/search.ts), on any text:
 *   node --import tsx bench/paired-bpb.ts A B FILE [--chars 65536]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkpointTextBits } from '../src/eval/text-metrics.js';
import { type PieceBits, heldOutPieces, pairedStandardError } from '../src/prune/search.js';

const { values, positionals } = parseArgs({ options: { chars: { type: 'string', default: '65536' } }, allowPositionals: true });
if (positionals.length !== 3) throw new Error('usage: paired-bpb.ts A B FILE [--chars N]');
const [a, b, file] = positionals;
const pieces = heldOutPieces(readFileSync(file, 'utf8').slice(0, Number(values.chars)));
const [x, y] = [await checkpointTextBits(a, pieces, 2), await checkpointTextBits(b, pieces, 2)];
const bpb = (p: PieceBits[]) => p.reduce((n, q) => n + q.bits, 0) / p.reduce((n, q) => n + q.bytes, 0);
console.log(
  JSON.stringify({
    file,
    pieces: pieces.length,
    a: bpb(x),
    b: bpb(y),
    difference: bpb(x) - bpb(y),
    standardError: pairedStandardError(x, y),
  }),
);
