/**
 * Raw safetensors bytes for the fuzzer: the header JSON as parsed, the data section as is. The
 * fuzzer edits these without any check (the point is to write what a reader must refuse).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface RawSafetensors {
  header: Record<string, any>;
  data: Buffer;
}

export function readRaw(file: string): RawSafetensors {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data: bytes.subarray(8 + n) };
}

/** Writes `header` (an object, or JSON text as given) and `data`; `declaredLength` overrides the 8-byte length field. */
export function writeRaw(file: string, header: unknown, data: Uint8Array, declaredLength?: bigint): void {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(declaredLength ?? BigInt(text.length));
  writeFileSync(file, Buffer.concat([length, text, data]));
}

/** Tensor names of a header (without `__metadata__`), in data order. */
export function tensorNames(header: Record<string, any>): string[] {
  return Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
}

/** Splits `raw` into shards of consecutive tensors, each a valid file on its own. */
export function splitShards(raw: RawSafetensors, shards: number): RawSafetensors[] {
  const names = tensorNames(raw.header);
  const per = Math.ceil(names.length / shards);
  const out: RawSafetensors[] = [];
  for (let s = 0; s < shards; s++) {
    const header: Record<string, any> = { __metadata__: { format: 'pt' } };
    const parts: Buffer[] = [];
    let offset = 0;
    for (const name of names.slice(s * per, (s + 1) * per)) {
      const [a, b] = raw.header[name].data_offsets as [number, number];
      header[name] = { ...raw.header[name], data_offsets: [offset, offset + b - a] };
      parts.push(raw.data.subarray(a, b));
      offset += b - a;
    }
    out.push({ header, data: Buffer.concat(parts) });
  }
  return out;
}
