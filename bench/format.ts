/** Number and table formatting of the bench's console output. */

/** `n` with thousands separators and `digits` decimals. */
export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** A Markdown table: first column left-aligned, the others right-aligned. */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ') + ' |'
  return [line(headers), '|' + widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|') + '|', ...rows.map(line)].join('\n')
}

/** A ratio as `2.6×` (two significant digits below 10). */
export function ratio (r: number): string {
  if (!Number.isFinite(r)) return 'n/a'
  return `${fmt(r, r >= 10 ? 0 : r >= 1 ? 1 : 2)}×`
}
