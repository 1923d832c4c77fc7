/**
 * Tensors are sliced and written in bounded chunks (a tensor over 2 GiB crashed `prune`: it was read
 * whole and fs.writeSync refuses ≥ 2 GiB). The chunk size is lowered here so every path crosses many
 * chunk boundaries; the bytes must equal slicing the whole tensor in memory. `node --import tsx bench/large-tensor.ts`
 * checks a real 2.15 GB embedding through `compact prune`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { readTensorBytes } from '../src/model/safetensors.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';
import { CHUNK, checkFinite, keptColumnChunks, keptRowChunks, sliceColumns, tensorChunks } from '../src/model/slice.js';
import { EMBED } from '../src/model/tensor-names.js';
import { STORIES } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'compact-chunks-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ckpt = openCheckpoint(`${STORIES}hf`);
const embed = ckpt.tensors.get(EMBED)!; // [512, 64] F32: 256 bytes a row
const down = ckpt.tensors.get('model.layers.2.mlp.down_proj.weight')!; // [64, 172]

const concat = (chunks: Iterable<Uint8Array>): { bytes: Buffer; sizes: number[] } => {
  const list = [...chunks];
  return { bytes: Buffer.concat(list), sizes: list.map((c) => c.byteLength) };
};

function rowsInMemory(bytes: Uint8Array, rowBytes: number, keep: number[]): Buffer {
  return Buffer.concat(keep.map((r) => bytes.subarray(r * rowBytes, (r + 1) * rowBytes)));
}

for (const chunkBytes of [1, 700, 4096, 1 << 26]) {
  test(`chunks of ${chunkBytes} bytes give the bytes of the whole tensor, sliced in memory`, () => {
    const saved = CHUNK.bytes;
    CHUNK.bytes = chunkBytes;
    try {
      const whole = readTensorBytes(embed);
      const all = concat(tensorChunks(embed));
      assert.deepEqual(all.bytes, Buffer.from(whole));
      // Kept rows: ascending with gaps (a pruned vocabulary), and in any order (channels by score).
      const ascending = Array.from({ length: 512 }, (_, i) => i).filter((i) => i % 3 !== 1);
      const shuffled = [500, 3, 4, 5, 200, 0, 511, 6, 7, 300];
      for (const keep of [ascending, shuffled]) {
        const got = concat(keptRowChunks(embed, keep));
        assert.deepEqual(got.bytes, rowsInMemory(whole, 256, keep));
        // Bounded: a chunk holds at most max(chunk, one row) bytes of output.
        assert.ok(
          got.sizes.every((n) => n <= Math.max(chunkBytes, 256)),
          `chunk sizes ${got.sizes.slice(0, 5)}`,
        );
      }
      const columns = [0, 5, 6, 7, 100, 171, 2];
      const cols = concat(keptColumnChunks(down, columns));
      assert.deepEqual(cols.bytes, Buffer.from(sliceColumns(readTensorBytes(down), down.shape, down.dtype, columns)));
    } finally {
      CHUNK.bytes = saved;
    }
  });
}

test('writeSafetensors writes a tensor given in chunks exactly as the same tensor given whole, and refuses a wrong length', async () => {
  const whole = readTensorBytes(embed);
  const a = join(work, 'whole.safetensors');
  const b = join(work, 'chunks.safetensors');
  await writeSafetensors(a, [{ name: 'e', dtype: 'F32', shape: embed.shape, bytes: () => whole }], { format: 'pt' });
  const saved = CHUNK.bytes;
  CHUNK.bytes = 1000;
  try {
    await writeSafetensors(b, [{ name: 'e', dtype: 'F32', shape: embed.shape, bytes: () => tensorChunks(embed) }], { format: 'pt' });
  } finally {
    CHUNK.bytes = saved;
  }
  assert.deepEqual(readFileSync(b), readFileSync(a));
  await assert.rejects(
    writeSafetensors(join(work, 'short.safetensors'), [{ name: 'e', dtype: 'F32', shape: [2], bytes: () => [new Uint8Array(4)] }]),
    /tensor e: got 4 bytes, header says 8/,
  );
});

test('checkFinite refuses NaN and ±∞ in F32, F16 and BF16 at any offset, and passes the largest finite values', () => {
  const cases: [string, number, number, number[], number[]][] = [
    // dtype, bytes per value, the bits of 1.0, non-finite bit patterns (+∞, −∞, NaN), largest finite values and a subnormal
    ['F32', 4, 0x3f800000, [0x7f800000, 0xff800000, 0x7fc00000], [0x7f7fffff, 0xff7fffff, 0x00000001]],
    ['F16', 2, 0x3c00, [0x7c00, 0xfc00, 0x7e00], [0x7bff, 0xfbff, 0x0001]],
    ['BF16', 2, 0x3f80, [0x7f80, 0xff80, 0x7fc0], [0x7f7f, 0xff7f, 0x0001]],
  ];
  for (const [dtype, width, one, bad, good] of cases) {
    const info = { name: 't', file: 'x.safetensors', dtype, shape: [8], begin: 0, end: 8 * width };
    // Eight values of 1.0 with `bits` at position `at`; shift 1: an unaligned view (copied before the check).
    const make = (bits: number, at: number, shift: number) => {
      const bytes = new Uint8Array(8 * width + shift).subarray(shift);
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const set = (i: number, v: number) => (width === 4 ? view.setUint32(4 * i, v, true) : view.setUint16(2 * i, v, true));
      for (let i = 0; i < 8; i++) set(i, one);
      set(at, bits);
      return bytes;
    };
    for (const shift of [0, 1])
      for (const at of [0, 7]) {
        for (const bits of bad)
          assert.throws(
            () => checkFinite(info, make(bits, at, shift)),
            /tensor t holds NaN or infinite values/,
            `${dtype} ${bits.toString(16)}`,
          );
        for (const bits of good) assert.doesNotThrow(() => checkFinite(info, make(bits, at, shift)), `${dtype} ${bits.toString(16)}`);
      }
  }
});
