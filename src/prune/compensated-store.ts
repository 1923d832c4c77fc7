/**
 * The compensated down_proj weights [D, I′] (f32) of every layer of every candidate split, from
 * the moment a layer's statistics are solved until the checkpoint is written. Small sets stay in
 * memory; past `memoryBytes` (16 MiB) they go to one scratch file (removed by `close`), so a search over
 * many candidates of a large model holds no more than one layer's weights at a time.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';

export class CompensatedStore {
  private readonly memory = new Map<string, Float32Array>();
  private readonly onDisk = new Map<string, { offset: number; length: number }>();
  private held = 0;
  private fd: number | null = null;
  private end = 0;

  constructor(
    private readonly scratchFile: string,
    private readonly memoryBytes = 16 * 1024 * 1024,
  ) {}

  put(candidate: number, layer: number, weight: Float32Array): void {
    const key = `${candidate}:${layer}`;
    if (this.held + weight.byteLength <= this.memoryBytes) {
      this.memory.set(key, weight);
      this.held += weight.byteLength;
      return;
    }
    this.fd ??= openSync(this.scratchFile, 'w+');
    writeSync(this.fd, new Uint8Array(weight.buffer, weight.byteOffset, weight.byteLength), 0, weight.byteLength, this.end);
    this.onDisk.set(key, { offset: this.end, length: weight.length });
    this.end += weight.byteLength;
  }

  get(candidate: number, layer: number): Float32Array | undefined {
    const key = `${candidate}:${layer}`;
    const inMemory = this.memory.get(key);
    if (inMemory) return inMemory;
    const where = this.onDisk.get(key);
    if (!where || this.fd == null) return undefined;
    const out = new Float32Array(where.length);
    readSync(this.fd, new Uint8Array(out.buffer), 0, out.byteLength, where.offset);
    return out;
  }

  close(): void {
    if (this.fd != null) closeSync(this.fd);
    this.fd = null;
    rmSync(this.scratchFile, { force: true });
    this.memory.clear();
    this.onDisk.clear();
  }
}
