/** A content hash of a directory tree that never opens a FIFO or follows a link: what "unchanged" means. */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function snapshot(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) hash.update(`${name} -> ${readlinkSync(path)}\n`);
    else if (stat.isDirectory()) hash.update(`${name}/ ${snapshot(path)}\n`);
    else if (stat.isFile()) hash.update(`${name} ${stat.mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}\n`);
    else hash.update(`${name} special ${stat.mode}\n`);
  }
  return hash.digest('hex');
}
