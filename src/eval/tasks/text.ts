/** Python string semantics the task definitions rely on (str.strip, str.capitalize), for exact prompts. */

/** The characters Python's str.isspace() accepts (str.strip() with no argument removes these). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING = new RegExp(`^[${PY_SPACE}]+`);
const TRAILING = new RegExp(`[${PY_SPACE}]+$`);

export const pyRstrip = (s: string): string => s.replace(TRAILING, '');
export const pyStrip = (s: string): string => s.replace(LEADING, '').replace(TRAILING, '');

/** Python's str.capitalize(): first character upper-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const [first = '', ...rest] = [...s];
  return first.toUpperCase() + rest.join('').toLowerCase();
}

/** Python's len(): code points, not UTF-16 units. */
export const pyLen = (s: string): number => [...s].length;
