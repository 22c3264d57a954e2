/**
 * What commands print: tables sized to the terminal, JSON, or NDJSON (one line per item, written
 * as items arrive). Colour only when stdout is a TTY and neither `--no-color` nor NO_COLOR says
 * otherwise. Buffers (payloads that did not decode) print as `{ "$base64": "..." }`.
 */

/** A stream the CLI writes to (process.stdout / stderr, or a test's collector). */
export interface Sink {
  write (chunk: string): unknown
  readonly isTTY?: boolean
  readonly columns?: number
}

export type Format = 'table' | 'json' | 'ndjson'

/** A table column: header, how to read a cell, and whether it may be cut to fit the terminal. */
export interface Column<T> {
  readonly header: string
  readonly get: (row: T) => string
  /** Right-aligned (numbers). */
  readonly right?: boolean
  /** May be cut (with …) when the table is wider than the terminal. */
  readonly flex?: boolean
  /** Colour of the cell, by its value. */
  readonly color?: (row: T) => Color | undefined
}

export type Color = 'red' | 'green' | 'yellow' | 'dim' | 'bold' | 'cyan'
const CODES: Record<Color, [number, number]> = { red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39], dim: [2, 22], bold: [1, 22] }

/** JSON.stringify replacer: Buffers as base64, Errors as plain objects. */
export function replacer (_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $base64: Buffer.from((value as { data: number[] }).data).toString('base64') }
  }
  return value
}

/** Printing for one command run. */
export class Output {
  readonly format: Format
  readonly color: boolean
  readonly #out: Sink
  readonly #err: Sink
  readonly #columns: number | undefined

  constructor (out: Sink, err: Sink, format: Format, color: boolean, env: Readonly<Record<string, string | undefined>>) {
    this.#out = out
    this.#err = err
    this.format = format
    this.color = color
    const fromEnv = Number(env.COLUMNS)
    // A terminal's width; COLUMNS when set; else no limit (a pipe gets whole lines).
    this.#columns = out.isTTY === true && (out.columns ?? 0) > 0 ? out.columns : Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined
  }

  /** Colours `text` when colour is on. */
  paint (text: string, color: Color | undefined): string {
    if (!this.color || color === undefined || text === '') return text
    const [on, off] = CODES[color]
    return `\u001b[${on}m${text}\u001b[${off}m`
  }

  /** Writes one line to stdout. */
  line (text = ''): void {
    this.#out.write(`${text}\n`)
  }

  /** Writes a note to stderr (hints, next-page cursors): never mixed into parseable output. */
  note (text: string): void {
    this.#err.write(`${text}\n`)
  }

  /** One value: pretty JSON, one NDJSON line, or `table` (a function printing it for humans). */
  value (value: unknown, table: () => void): void {
    if (this.format === 'json') this.line(JSON.stringify(value, replacer, 2))
    else if (this.format === 'ndjson') this.line(JSON.stringify(value, replacer))
    else table()
  }

  /** A whole list: a table, a JSON array (or `wrap(rows)`), or one NDJSON line per row. */
  rows<T> (rows: readonly T[], columns: ReadonlyArray<Column<T>>, wrap?: (rows: readonly T[]) => unknown): void {
    if (this.format === 'table') this.table(rows, columns)
    else if (this.format === 'ndjson') for (const row of rows) this.line(JSON.stringify(row, replacer))
    else this.line(JSON.stringify(wrap === undefined ? rows : wrap(rows), replacer, 2))
  }

  /** Prints a table: columns as wide as their widest cell; flexible ones cut to fit the terminal. */
  table<T> (rows: readonly T[], columns: ReadonlyArray<Column<T>>): void {
    const cells = rows.map(row => columns.map(c => oneLine(c.get(row))))
    const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map(r => r[i].length)))
    const limit = this.#columns
    if (limit !== undefined) {
      let excess = widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1) - limit
      // Cut flexible columns, widest first, down to 8 characters at least.
      const flex = columns.map((c, i) => i).filter(i => columns[i].flex === true).sort((a, b) => widths[b] - widths[a])
      for (const i of flex) {
        if (excess <= 0) break
        const cut = Math.min(excess, widths[i] - Math.max(8, columns[i].header.length))
        if (cut > 0) {
          widths[i] -= cut
          excess -= cut
        }
      }
    }
    const render = (texts: string[], colors: Array<Color | undefined>): string => texts.map((text, i) => {
      const fitted = text.length > widths[i] ? `${text.slice(0, widths[i] - 1)}…` : text
      const padded = columns[i].right === true ? fitted.padStart(widths[i]) : i === texts.length - 1 ? fitted : fitted.padEnd(widths[i])
      return this.paint(padded, colors[i])
    }).join('  ')
    this.line(render(columns.map(c => c.header), columns.map(() => 'bold')))
    rows.forEach((row, r) => this.line(render(cells[r], columns.map(c => c.color?.(row)))))
  }

  /** Key/value lines (a record for humans). */
  fields (pairs: ReadonlyArray<[string, string | undefined]>): void {
    const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined)
    const width = Math.max(...shown.map(([k]) => k.length))
    for (const [key, value] of shown) this.line(`${this.paint(`${key}:`.padEnd(width + 1), 'bold')} ${value}`)
  }
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ⏎ ')
}

/** `1234567` → `1,234,567`. */
export function count (n: number): string {
  return n.toLocaleString('en-US')
}

/** A duration for humans: `850ms`, `12s`, `3m 4s`, `2h 5m`, `3d 4h`. */
export function span (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

/** An epoch-ms time as ISO 8601, or '' when absent. */
export function time (ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString()
}
