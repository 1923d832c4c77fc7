/** Reading a user's file: a missing or unreadable file is a user error naming the file. */
import { readFileSync } from 'node:fs';
import { CompactError } from './errors.js';

/** The file's UTF-8 text; `hint` is appended to the error (e.g. "; is DIR a checkpoint directory?"). */
export function readUserText(file: string, hint = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${hint}`);
  }
}

/** The file parsed as JSON. */
export function readUserJson(file: string): unknown {
  const text = readUserText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CompactError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}
