/**
 * One cell of the issue-12 measurements (docs/compensation.md): prune tinystories-llama32k with the
 * given `compact prune` arguments, then measure held-out TinyStories bits per byte with agreement
 * against the dense model, and the first 100 KB of WikiText-2 test; prints one JSON line with the
 * excesses over the dense model. Reads ../shared (bench/shared.ts).
 *   node --import tsx bench/split-cell.ts NAME [--held FILE] [prune args…]      e.g. split-cell.ts v20270 --vocab 20270 --ffn 416 --vocab-mode frequency --seed 0
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { sharedPath } from './shared.js';

const [name, ...args] = process.argv.slice(2);
if (!name) throw new Error('usage: split-cell.ts NAME [--held FILE] [prune args…]');
// --held FILE: the TinyStories text measured instead of the whole held-out file (e.g. its second half, when the first is --search-text).
const heldAt = args[0] === '--held' ? 2 : 0;
const held = heldAt ? args[1] : 'data/tinystories/heldout_10pct.txt';
const pruneArgs = args.slice(heldAt);
const dense = sharedPath('models/tinystories-llama32k/hf');
const wikiHead = '.tmp/wikitext-2-test-head.txt'; // as bench/study.ts cuts it
mkdirSync('.tmp', { recursive: true });
const wiki = readFileSync(sharedPath('data/wikitext-2-raw/wiki.test.rows.txt'), 'utf8');
writeFileSync(wikiHead, wiki.slice(0, wiki.indexOf('\n', 100000) + 1));

const compact = (...args: string[]) =>
  JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'test/helpers/cli-entry.ts', ...args, '--json'], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    }),
  );
const out = `.tmp/cell-${name}`;
const pruned = compact('prune', dense, '-o', out, '--force', ...pruneArgs);
const [denseHeld, denseWiki] = [compact('eval', dense, '--text', held), compact('eval', dense, '--text', wikiHead)];
const [h, w] = [compact('eval', out, '--text', held, '--reference', dense), compact('eval', out, '--text', wikiHead)];
console.log(
  JSON.stringify({
    name,
    vocab: pruned.vocab.after,
    ffn: pruned.ffn.after,
    heldOutExcess: h.bitsPerByte - denseHeld.bitsPerByte,
    wikiTextExcess: w.bitsPerByte - denseWiki.bitsPerByte,
    greedyAgreement: h.agreement.greedy.meanAgreement,
    top1: h.agreement.kl.top1Agreement,
    kl: h.agreement.kl.meanKl,
  }),
);
