/**
 * JSON that round-trips Python's number types. JavaScript reads `3.0` as 3 and writes it back as
 * `3`, which transformers' strict config classes then reject as an int where a float belongs
 * (e.g. `final_logit_softcapping`). So we remember which paths held float literals and write
 * integral values there as `3.0` again, with Python's 2-space indent.
 */
import { expectJsonObject, MAX_JSON_BYTES, parseUserJson, type ReadOptions, readUserText } from './files.js';

/** A parsed JSON file and the paths (keys joined by "/") whose numbers were written as floats. */
export interface JsonDocument {
  value: unknown;
  floatPaths: Set<string>;
}

/** A JSON object file (anything else, e.g. `null`, is refused) and its float-literal paths. */
export function readJsonDocument(file: string, options: ReadOptions = {}): JsonDocument {
  const text = readUserText(file, { maxBytes: MAX_JSON_BYTES, ...options });
  return { value: expectJsonObject(parseUserJson(text, file), file), floatPaths: floatLiteralPaths(text) };
}

/** Paths of number literals containing '.', 'e' or 'E', found by scanning the (valid) JSON text. */
export function floatLiteralPaths(text: string): Set<string> {
  const paths = new Set<string>();
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      while (text[i] !== '}') {
        ws();
        const key = string();
        ws();
        i++; // ':'
        value(`${path}/${key}`);
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
    } else if (c === '[') {
      i++;
      ws();
      for (let index = 0; text[i] !== ']'; index++) {
        value(`${path}/${index}`);
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
    } else if (c === '"') {
      string();
    } else {
      const start = i;
      while (i < text.length && !/[\s,\]}]/.test(text[i])) i++;
      if (/^-?\d/.test(text.slice(start, i)) && /[.eE]/.test(text.slice(start, i))) paths.add(path);
    }
  };
  value('');
  return paths;
}

/** JSON text with 2-space indent and a final newline; integral numbers at `floatPaths` keep a `.0`. */
export function jsonText(value: unknown, floatPaths: ReadonlySet<string> = new Set()): string {
  const write = (v: unknown, path: string, indent: string): string => {
    if (typeof v === 'number' && Number.isInteger(v) && floatPaths.has(path)) {
      // 1e308 is an integer too, written "1e+308": already a float literal ("1e+308.0" is not JSON)
      const t = String(v);
      return /e/.test(t) ? t : `${t}.0`;
    }
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      const inner = indent + '  ';
      return `[\n${v.map((x, k) => inner + write(x, `${path}/${k}`, inner)).join(',\n')}\n${indent}]`;
    }
    if (v && typeof v === 'object') {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (entries.length === 0) return '{}';
      const inner = indent + '  ';
      return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, `${path}/${k}`, inner)}`).join(',\n')}\n${indent}}`;
    }
    return JSON.stringify(v) ?? 'null';
  };
  return `${write(value, '', '')}\n`;
}
