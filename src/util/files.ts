/**
 * Reading a user's file: the one place every input file goes through. A missing, unreadable,
 * oversized or non-regular file (a directory, a FIFO, a device such as /dev/zero) is a user error
 * naming the file, never a hang or a crash; a file of a model directory may not lead out of it
 * through a symbolic link; text that is not UTF-8 (a binary or Latin-1 file) is refused with the
 * offset of its first bad byte, never decoded into replacement characters and measured; a JSON
 * syntax error quotes at most a short, escaped excerpt on one line.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { CompactError, check } from './errors.js';

const MiB = 1024 * 1024;
/** Largest JSON file read (real tokenizer.json files reach ~35 MB: Gemma 3's 262k vocabulary). */
export const MAX_JSON_BYTES = 64 * MiB;
/** Largest text file read whole (a JavaScript string holds at most ~512 Mi UTF-16 units). */
export const MAX_TEXT_BYTES = 256 * MiB;

export interface ReadOptions {
  /** Appended to a "cannot read" error (e.g. "; is DIR a checkpoint directory?"). */
  hint?: string;
  /** Larger files are refused before anything is read. */
  maxBytes?: number;
  /** The model directory the file belongs to: a symbolic link may not lead outside its repository. */
  within?: string;
}

/**
 * Whether `path` (a file of `dir`, possibly a symbolic link) resolves inside `dir` or, for a Hugging
 * Face cache snapshot (`<repo>/snapshots/<rev>/`, where every file is a link into `<repo>/blobs/`),
 * inside its repository's `blobs/`. False for a dangling link.
 */
export function insideRepository(dir: string, path: string): boolean {
  let target: string;
  let root: string;
  try {
    target = realpathSync(path);
    root = realpathSync(dir);
  } catch {
    return false;
  }
  const roots = [root];
  if (basename(dirname(root)) === 'snapshots') roots.push(join(dirname(dirname(root)), 'blobs'));
  return roots.some((r) => target.startsWith(r + sep));
}

const KIND = (s: ReturnType<typeof fstatSync>): string =>
  s.isDirectory()
    ? 'a directory'
    : s.isFIFO()
      ? 'a FIFO'
      : s.isCharacterDevice() || s.isBlockDevice()
        ? 'a device'
        : s.isSocket()
          ? 'a socket'
          : 'not a regular file';

/**
 * Opens a regular file for reading (never blocking on a FIFO) and returns its descriptor and size.
 * The caller closes the descriptor.
 */
export function openUserFile(file: string, options: ReadOptions = {}): { fd: number; size: number } {
  if (options.within != null) {
    check(
      insideRepository(options.within, file) || !exists(file),
      `${file}: is a symbolic link leading outside the model directory ${options.within}; compact reads only the model's own files`,
    );
  }
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${options.hint ?? ''}`);
  }
  try {
    const stat = fstatSync(fd);
    check(stat.isFile(), `${file}: is ${KIND(stat)}, not a regular file`);
    if (options.maxBytes != null) {
      check(
        stat.size <= options.maxBytes,
        `${file}: is ${stat.size} bytes; compact reads at most ${options.maxBytes} bytes (${options.maxBytes / MiB} MiB) for this file`,
      );
    }
    return { fd, size: stat.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Checks, before any long work, that each file can be read as `readUserBytes` will read it later. */
export function checkReadable(files: Iterable<string>, options: ReadOptions = {}): void {
  for (const file of files) closeSync(openUserFile(file, { maxBytes: MAX_TEXT_BYTES, ...options }).fd);
}

function exists(file: string): boolean {
  try {
    realpathSync(file);
    return true;
  } catch {
    return false;
  }
}

/** The whole file (a regular file of at most `maxBytes`, default MAX_TEXT_BYTES). */
export function readUserBytes(file: string, options: ReadOptions = {}): Buffer {
  const { fd, size } = openUserFile(file, { maxBytes: MAX_TEXT_BYTES, ...options });
  try {
    const out = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, out, done, Math.min(size - done, 1 << 30), done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? out : out.subarray(0, done);
  } catch (e) {
    if (e instanceof CompactError) throw e;
    throw new CompactError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** The file's UTF-8 text; a file that is not UTF-8 is refused. */
export function readUserText(file: string, options: ReadOptions = {}): string {
  const bytes = readUserBytes(file, options);
  if (isUtf8(bytes)) return bytes.toString('utf8');
  throw new CompactError(
    `${file}: not UTF-8 text (first invalid byte at offset ${firstInvalidUtf8Byte(bytes)}); give a plain UTF-8 text file`,
  );
}

/** Where decoding `bytes` (not valid UTF-8) first put a replacement character for bytes that are not one. */
function firstInvalidUtf8Byte(bytes: Buffer): number {
  const text = bytes.toString('utf8');
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    const at = Buffer.byteLength(text.slice(0, i)); // the text before is valid, so its length is the offset
    if (bytes[at] !== 0xef || bytes[at + 1] !== 0xbf || bytes[at + 2] !== 0xbd) return at; // not an encoded U+FFFD
  }
  return 0; // unreachable: invalid UTF-8 always decodes to a replacement character
}

/** Deepest nesting of objects and lists read (real files nest a few levels; code that walks JSON recursively needs a bound). */
export const MAX_JSON_DEPTH = 256;

/**
 * `text` parsed as JSON; a syntax error names the file and quotes at most a short escaped excerpt.
 * Nesting deeper than MAX_JSON_DEPTH is refused (it would overflow the stack of a recursive reader or writer).
 */
export function parseUserJson(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CompactError(`${file}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  check(depthAtMost(text, MAX_JSON_DEPTH), `${file}: JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
  return value;
}

/** Whether the (valid) JSON text nests objects and lists at most `limit` deep: one pass over the text, strings skipped. */
export function depthAtMost(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: to the next quote not escaped by an odd number of backslashes.
      for (;;) {
        i = text.indexOf('"', i + 1);
        let slashes = 0;
        while (text.charCodeAt(i - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return false;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return true;
}

/** The file parsed as JSON (at most MAX_JSON_BYTES unless told otherwise). */
export function readUserJson(file: string, options: ReadOptions = {}): unknown {
  return parseUserJson(readUserText(file, { maxBytes: MAX_JSON_BYTES, ...options }), file);
}

/** The file parsed as a JSON object ({…}); anything else (null, a list, a number) is refused. */
export function readUserJsonObject(file: string, options: ReadOptions = {}): Record<string, unknown> {
  return expectJsonObject(readUserJson(file, options), file);
}

/** `value` when it is a JSON object; otherwise a user error naming `file` and what it holds instead. */
export function expectJsonObject(value: unknown, file: string): Record<string, unknown> {
  check(isJsonObject(value), `${file}: expected a JSON object, got ${describeJson(value)}`);
  return value;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value != null && typeof value === 'object' && !Array.isArray(value);
}

/** "null", "a list", "a string", … for error messages (never the value itself). */
export function describeJson(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** `s` on one line (control characters escaped as in JSON), cut to `max` characters. */
export function oneLine(s: string, max = 160): string {
  const escaped = s.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
  return escaped.length <= max ? escaped : `${escaped.slice(0, max)}…`;
}
