/** Plain-text tables and number formatting for terminal output. */

export function table(rows: string[][], alignRight: boolean[] = []): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (alignRight[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const integer = (n: number): string => n.toLocaleString('en-US');
export const percent = (part: number, total: number): string => `${((100 * part) / total).toFixed(1)} %`;
export const bytes = (n: number): string =>
  n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
