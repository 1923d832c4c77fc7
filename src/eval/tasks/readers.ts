/**
 * Readers for the benchmark file formats (JSONL, CSV, TSV, plain lines). Every problem is a
 * CompactError naming the file, the line and the field, so a malformed data file reads as one line.
 */
import { CompactError, check } from '../../util/errors.js';
import { isJsonObject, parseUserJson, readUserText } from '../../util/files.js';

/** One record of a data file and where it came from (1-based line of its start). */
export interface Row<T> {
  file: string;
  line: number;
  value: T;
}

export function readText(file: string, usedFor: string): string {
  return readUserText(file, { hint: `; ${usedFor} needs it` });
}

/** Non-empty lines of a text file with their line numbers (a final newline ends the last line). */
export function readLines(file: string, usedFor: string): Row<string>[] {
  const lines = readText(file, usedFor).split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines.map((value, i) => ({ file, line: i + 1, value }));
}

/** One JSON object per line; blank lines are skipped. */
export function readJsonl(file: string, usedFor: string): Row<Record<string, unknown>>[] {
  const rows: Row<Record<string, unknown>>[] = [];
  for (const { line, value } of readLines(file, usedFor)) {
    if (value.trim() === '') continue;
    const parsed = parseUserJson(value, `${file}:${line}`);
    check(isJsonObject(parsed), `${file}:${line}: expected a JSON object`);
    rows.push({ file, line, value: parsed });
  }
  check(rows.length > 0, `${file}: no records`);
  return rows;
}

/** RFC 4180 records (or TSV with `separator` '\t'), each with the line where it starts; blank lines are skipped. */
export function readRecords(file: string, usedFor: string, separator = ','): { line: number; fields: string[] }[] {
  const text = readText(file, usedFor);
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1; // current physical line
  let recordLine = 1; // line where the current record starts
  let state: 'start' | 'plain' | 'quoted' | 'closed' = 'start'; // within the current field
  const endField = () => {
    fields.push(field);
    field = '';
    state = 'start';
  };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields });
    fields = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (state === 'quoted') {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') state = 'closed';
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === separator) endField();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else if (state === 'closed') throw new CompactError(`${file}:${line}: text after the closing quote of a field`);
    else if (c === '"' && state === 'start') state = 'quoted';
    else {
      field += c;
      state = 'plain';
    }
  }
  check(state !== 'quoted', `${file}:${recordLine}: unterminated quoted field`);
  if (field !== '' || fields.length > 0 || state === 'closed') endRecord();
  return records;
}

/**
 * RFC 4180 CSV (or TSV with `separator` '\t') with a header row: each record as header → field.
 * Quoted fields may hold separators, doubled quotes and newlines.
 */
export function readTable(file: string, usedFor: string, separator = ',', requiredColumns: string[] = []): Row<Record<string, string>>[] {
  const records = readRecords(file, usedFor, separator);
  check(records.length > 0, `${file}: empty file (expected a header row)`);
  const header = records[0].fields;
  for (const column of requiredColumns)
    check(header.includes(column), `${file}:1: header has no column "${column}" (columns: ${header.join(', ')})`);
  check(records.length > 1, `${file}: no records after the header`);
  return records.slice(1).map(({ line: at, fields: values }) => {
    check(values.length === header.length, `${file}:${at}: ${values.length} fields, the header has ${header.length}`);
    return { file, line: at, value: Object.fromEntries(header.map((h, j) => [h, values[j]])) };
  });
}

/** Typed field access with file:line: field "x" messages. */
export function stringField(row: Row<Record<string, unknown>>, name: string, options: { nonEmpty?: boolean } = {}): string {
  const v = row.value[name];
  check(
    typeof v === 'string',
    `${row.file}:${row.line}: field "${name}" ${v === undefined ? 'is missing' : `must be a string, got ${JSON.stringify(v)}`}`,
  );
  if (options.nonEmpty) check(v.length > 0, `${row.file}:${row.line}: field "${name}" is empty`);
  return v;
}

export function stringArrayField(row: Row<Record<string, unknown>>, name: string, value: unknown = row.value[name]): string[] {
  check(value !== undefined, `${row.file}:${row.line}: field "${name}" is missing`);
  check(
    Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'string'),
    `${row.file}:${row.line}: field "${name}" must be a non-empty list of strings, got ${JSON.stringify(value)}`,
  );
  return value as string[];
}

export function objectField(row: Row<Record<string, unknown>>, name: string): Row<Record<string, unknown>> {
  const v = row.value[name];
  check(
    v !== null && typeof v === 'object' && !Array.isArray(v),
    `${row.file}:${row.line}: field "${name}" ${v === undefined ? 'is missing' : 'must be an object'}`,
  );
  return { ...row, value: v as Record<string, unknown> };
}

/** An integer in [0, count): a field value that is a JSON integer or a string of digits. */
export function indexField(row: Row<Record<string, unknown>>, name: string, count: number, value: unknown = row.value[name]): number {
  check(value !== undefined, `${row.file}:${row.line}: field "${name}" is missing`);
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  check(
    Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < count,
    `${row.file}:${row.line}: field "${name}" must be an integer in [0, ${count}), got ${JSON.stringify(value)}`,
  );
  return n as number;
}
