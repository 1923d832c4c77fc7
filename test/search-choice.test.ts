/**
 * How the split search chooses (src/prune/search.ts): the paired standard error over held-out
 * pieces, the one-standard-error rule, the batched per-piece measure it relies on, and --search-text.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkpointTextBits, checkpointTextMetrics } from '../src/eval/text-metrics.js';
import { prune } from '../src/api.js';
import { chooseSplit, type MeasuredSplit, type PieceBits, pairedStandardError } from '../src/prune/search.js';
import { calibrationFor } from '../src/prune/statistics.js';
import { CALIBRATION_TEXT, HELDOUT_TEXT, STORIES } from './helpers/fixtures.js';

const pieces = (bits: number[]) => bits.map((b) => ({ bits: b, bytes: 100 }));

test('paired standard error: equal pieces give the standard error of the mean per-piece difference', () => {
  // Per-piece differences in bits per byte 0 and 2: mean 1, sample s.d. √2, s.e. √2/√2 = 1.
  assert.equal(pairedStandardError(pieces([100, 300]), pieces([100, 100])), 1);
  // A difference that is the same fraction of every piece has no spread.
  assert.ok(pairedStandardError(pieces([120, 120, 120]), pieces([100, 100, 100])) < 1e-12);
  assert.equal(pairedStandardError(pieces([150]), pieces([100])), 0, 'one piece: no spread to measure');
});

function split(index: number, vocabMode: 'rank' | 'frequency', vocab: number, bits: number[]): MeasuredSplit {
  const p = pieces(bits);
  const bytes = p.reduce((n, x) => n + x.bytes, 0);
  const heldOutBitsPerByte = p.reduce((n, x) => n + x.bits, 0) / bytes;
  return { index, vocabShare: 0.5, vocabMode, pass: 'grid', vocab, ffn: 64, removedRatio: 0.3, heldOutBitsPerByte, pieces: p };
}

test('one-standard-error rule: within one s.e. of the lowest, the fewest frequency-chosen tokens removed wins', () => {
  const V = 1000;
  const lowest = split(0, 'frequency', 900, [100, 100, 100, 100]); // 1.00 bpb, 100 tokens removed by frequency
  // 1.01 bpb; differences 10, −10, 4, 0 bits: s.e. = (4/3 · (9² + 11² + 3² + 1²))^½ / 400 = 0.042 ≥ 0.01
  const close = split(1, 'frequency', 950, [110, 90, 104, 100]);
  const far = split(2, 'frequency', 990, [120, 120, 120, 120]); // 1.20 bpb, s.e. 0
  const rank = split(3, 'rank', 800, [150, 150, 150, 150]);
  const { chosen, compared } = chooseSplit([far, rank, close, lowest], V);
  assert.equal(chosen, 1);
  assert.deepEqual(
    compared.map((c) => c.vocab),
    [950, 900, 990, 800],
    'chosen first, then by bits per byte',
  );
  assert.ok(Math.abs(compared[0].excess - 0.01) < 1e-12);
  assert.ok(Math.abs(compared[0].standardError - Math.sqrt((4 / 3) * 212) / 400) < 1e-12);
  assert.deepEqual([compared[1].excess, compared[1].standardError], [0, 0]);

  // Without spread the lowest wins; a rank-chosen vocabulary within one s.e. beats any frequency one.
  assert.equal(chooseSplit([far, lowest, split(4, 'frequency', 950, [101, 101, 101, 101])], V).chosen, 0);
  assert.equal(chooseSplit([lowest, split(5, 'rank', 800, [110, 90, 104, 100]), close], V).chosen, 5);
});

test('per-piece bits: the pieces batched together score what each scores alone', async () => {
  const text = readFileSync(HELDOUT_TEXT, 'utf8');
  const texts = [text.slice(0, 3000), text.slice(3000, 3200), text.slice(3200, 9000)];
  const together = await checkpointTextBits(`${STORIES}hf`, texts, 2);
  for (const [i, t] of texts.entries()) {
    const alone = await checkpointTextMetrics(`${STORIES}hf`, t, 2);
    assert.equal(together[i].bytes, alone.bytes);
    assert.ok(
      Math.abs(together[i].bits - alone.totalNll / Math.LN2) <= 1e-6 * together[i].bits,
      `piece ${i}: ${together[i].bits} vs ${alone.totalNll / Math.LN2}`,
    );
  }
});

test('the race: every split is measured on every 4th piece; only those within 4 standard errors of the lowest there on the rest', async () => {
  const work = mkdtempSync(join(tmpdir(), 'compact-race-'));
  try {
    // A stub measure: bits per byte 1 + 0.001 per token removed, plus ±0.02 noise of its own per piece and split.
    const calls = new Map<string, PieceBits[][]>(); // scratch dir (one per split) → what each call returned
    const noise = (text: string, dir: string) =>
      ((createHash('sha256').update(`${dir}\n${text}`).digest().readUInt32LE(0) / 2 ** 32) * 2 - 1) * 0.02;
    const report = await prune(`${STORIES}hf`, join(work, 'out'), {
      ratio: 0.3,
      samples: 4,
      seqLen: 128,
      threads: 2,
      measureTexts: async (dir, texts) => {
        const vocab = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocab_size as number;
        const bits = texts.map((t) => {
          const bytes = Buffer.byteLength(t);
          return { bits: bytes * (1 + 0.001 * (512 - vocab) + noise(t, dir)), bytes };
        });
        calls.set(dir, [...(calls.get(dir) ?? []), bits]);
        return bits;
      },
    });
    const auto = report.auto!;
    const P = auto.heldOutPieces;
    const firstCount = Math.ceil(P / 4);
    assert.ok(P >= 16, `${P} pieces: enough for a race`);
    const runs = [...calls.values()];
    assert.equal(runs.length, auto.candidates.length, 'one scratch checkpoint per split');
    assert.ok(
      runs.every((r) => r[0].length === firstCount),
      'every split measured first on every 4th piece',
    );
    const complete = auto.candidates.filter((c) => c.piecesMeasured === P);
    const dropped = auto.candidates.filter((c) => c.piecesMeasured === firstCount);
    assert.equal(complete.length + dropped.length, auto.candidates.length);
    assert.ok(
      complete.length >= 2 && dropped.length >= 2,
      `both outcomes exercised: ${complete.length} complete, ${dropped.length} dropped`,
    );
    assert.equal(
      runs.filter((r) => r.length === 2 && r[1].length === P - firstCount).length,
      complete.length,
      'only the complete ones measured again, on the rest',
    );
    for (const c of dropped) assert.ok(c.excess > 4 * c.standardError, `dropped V′ ${c.vocab}: ${c.excess} > 4 × ${c.standardError}`);
    // The grid's race, recomputed from what the stub returned: survivors are within 4 s.e. of the lowest on the first pieces.
    const grid = runs.slice(0, auto.candidates.filter((c) => c.pass === 'grid').length).map((r) => r[0]);
    const bpb = (p: PieceBits[]) => p.reduce((n, x) => n + x.bits, 0) / p.reduce((n, x) => n + x.bytes, 0);
    const lowest = grid.reduce((a, b) => (bpb(b) < bpb(a) ? b : a));
    const gridSurvivors = runs.slice(0, grid.length).filter((r) => r.length === 2).length;
    assert.equal(gridSurvivors, grid.filter((g) => bpb(g) - bpb(lowest) <= 4 * pairedStandardError(g, lowest)).length);
    assert.equal(report.vocab.after, auto.candidates[0].vocab, 'the chosen split is listed first');
    assert.equal(auto.candidates[0].piecesMeasured, P, 'and was measured on every piece');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('--search-text: the search measures exactly that text, and the calibration keeps every document whole', async () => {
  const work = mkdtempSync(join(tmpdir(), 'compact-search-text-'));
  try {
    const file = join(work, 'search.txt');
    const text = readFileSync(HELDOUT_TEXT, 'utf8').slice(0, 20000);
    writeFileSync(file, text);
    const measured = new Set<string>();
    const report = await prune(`${STORIES}hf`, join(work, 'out'), {
      ratio: 0.3,
      samples: 4,
      seqLen: 128,
      threads: 2,
      searchText: file,
      autoRefine: false,
      measureTexts: async (_dir, texts) => {
        texts.forEach((t) => measured.add(t));
        return texts.map((t) => ({ bits: Buffer.byteLength(t), bytes: Buffer.byteLength(t) }));
      },
    });
    const auto = report.auto!;
    assert.deepEqual([auto.heldOutText, auto.heldOutChars], [file, text.length]);
    assert.match(
      readFileSync(join(work, 'out', 'README.md'), 'utf8'),
      /held-out characters \([\d,]+ tokens, \d+ pieces\) of `search\.txt`/,
    );
    // What the stub was handed, put back in file order, is the file: every character measured once.
    const inOrder = [...measured].sort((a, b) => text.indexOf(a) - text.indexOf(b));
    assert.equal(measured.size, auto.heldOutPieces);
    assert.ok(measured.size >= 16, `${measured.size} pieces`);
    assert.equal(inOrder.join(''), text);
    // Without --search-text the last 10 % of the calibration text is held out; with it, nothing is
    // (and a search text inside the calibration text is refused: test/prune-bad-input.test.ts).
    const options = { calib: [CALIBRATION_TEXT], calibField: 'text', samples: 4, seqLen: 128, seed: 0, auto: true };
    const needs = { activations: true, expectedCounts: false };
    const whole = readFileSync(CALIBRATION_TEXT, 'utf8');
    const withTail = calibrationFor(`${STORIES}hf`, options, needs)!;
    const withText = calibrationFor(`${STORIES}hf`, { ...options, searchText: file }, needs)!;
    assert.equal(withTail.documents.join('').length + withTail.heldOut.length, whole.length);
    assert.ok(withTail.heldOut.length > 0);
    assert.deepEqual([withText.documents.join(''), withText.heldOut], [whole, text]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
