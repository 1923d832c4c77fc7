/**
 * Writes, for the Python oracle (slow_tokenizer_oracle.py), each case of slow-tokenizer-cases.ts as
 * two folders, `original/` and `pruned/` (tokenizer.json, tokenizer_config.json and the slow-tokenizer
 * files: tokenizer.model, or vocab.json + merges.txt + added_tokens.json), and a manifest with the
 * texts, the kept ids and the sha256 of every file. Usage, from the repository root:
 *
 *   node --import tsx tools/reference/write_slow_tokenizers.ts [OUT_DIR]   (default: $TMPDIR/compact-slow-tokenizers)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prunedFiles, SLOW_CASES, SLOW_SOURCES, SLOW_TEXTS, sourceFiles } from './slow-tokenizer-cases.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function writeFolder(dir: string, files: Map<string, Uint8Array>): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const hashes: Record<string, string> = {};
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    writeFileSync(join(dir, name), bytes);
    hashes[name] = sha256(bytes);
  }
  return hashes;
}

function main(outDir: string): void {
  rmSync(outDir, { recursive: true, force: true });
  const cases = SLOW_CASES.map((c) => {
    const original = writeFolder(join(outDir, c.name, 'original'), sourceFiles(ROOT, c.source));
    const { keep, files } = prunedFiles(ROOT, c, SLOW_TEXTS);
    const pruned = writeFolder(join(outDir, c.name, 'pruned'), files);
    console.log(`${c.name}: V′ = ${keep.length}, ${Object.keys(pruned).join(', ')}`);
    return { ...c, source_dir: SLOW_SOURCES[c.source], keep, original_sha256: original, pruned_sha256: pruned };
  });
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify({ texts: SLOW_TEXTS, cases }));
  console.log(`wrote ${cases.length} cases and manifest.json to ${outDir}`);
}

main(process.argv[2] ?? join(tmpdir(), 'compact-slow-tokenizers'));
