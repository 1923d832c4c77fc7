/**
 * Writes the bundled demo model models/tinystories-llama32k/hf from the project's f32 original
 * (../shared/models/tinystories-llama32k/hf): every F32 tensor rounded to BF16 (round to nearest
 * even, as torch's `.to(torch.bfloat16)`), same names, order and header metadata, with the repo's
 * own safetensors writer; config.json's dtype set to bfloat16; the tokenizer and generation files
 * copied byte for byte. Deterministic: the same input gives the same bytes.
 *
 *   node --import tsx tools/bundle-llama32k.ts [SOURCE_DIR] [OUT_DIR]
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16 } from '../src/gguf/quantize.js';
import { readSafetensorsHeader, readTensorBytes } from '../src/model/safetensors.js';
import { writeSafetensors } from '../src/model/safetensors-writer.js';

const source = process.argv[2] ?? '../shared/models/tinystories-llama32k/hf';
const out = process.argv[3] ?? 'models/tinystories-llama32k/hf';
const COPIED = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/** Little-endian f32 bytes → little-endian bf16 bytes. */
function toBf16(bytes: Uint8Array): Uint8Array {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4); // f32 bit patterns
  const halves = new Uint16Array(words.length);
  for (let i = 0; i < words.length; i++) halves[i] = f32ToBf16(words[i]);
  return new Uint8Array(halves.buffer);
}

const header = readSafetensorsHeader(join(source, 'model.safetensors'));
const tensors = [...header.tensors.values()].sort((a, b) => a.begin - b.begin); // source order
for (const t of tensors) if (t.dtype !== 'F32') throw new Error(`${t.name}: expected F32, got ${t.dtype}`);
mkdirSync(out, { recursive: true });
await writeSafetensors(
  join(out, 'model.safetensors'),
  tensors.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape, bytes: () => toBf16(readTensorBytes(t)) })),
  Object.keys(header.metadata).length > 0 ? header.metadata : undefined,
);
// Only the dtype field changes; the rest of config.json is kept as written (float literals included).
const config = readFileSync(join(source, 'config.json'), 'utf8');
if (!config.includes('"dtype": "float32"')) throw new Error('config.json: no "dtype": "float32" field to rewrite');
writeFileSync(join(out, 'config.json'), config.replace('"dtype": "float32"', '"dtype": "bfloat16"'));
for (const file of COPIED) copyFileSync(join(source, file), join(out, file));
console.log(`wrote ${out}: ${tensors.length} tensors as BF16`);
