/**
 * A cheap identity for a checkpoint: sha256 over every tensor's name, dtype, shape and offsets
 * plus the first and last 64 KiB of each shard's bytes. Two checkpoints with the same
 * architecture but different weights differ; reading it costs a few reads, not the model.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from './checkpoint.js';

export function fingerprint(ckpt: Checkpoint): string {
  const hash = createHash('sha256');
  const tensors = [...ckpt.tensors.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const t of tensors) hash.update(`${t.name}|${t.dtype}|${t.shape.join('x')}|${t.begin}|${t.end}\n`);
  for (const shard of ckpt.shards) {
    const fd = openSync(join(ckpt.dir, shard.file), 'r');
    try {
      const size = fstatSync(fd).size;
      const chunk = Buffer.alloc(Math.min(65536, size));
      for (const position of [0, Math.max(0, size - chunk.length)]) {
        readSync(fd, chunk, 0, chunk.length, position);
        hash.update(chunk);
      }
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}
