/**
 * HTML built by a tagged template that escapes every interpolated value: payloads, results,
 * errors, ids and queue names are untrusted, so nothing reaches the page unescaped unless it is
 * already a {@link SafeHtml} made by this module.
 */

/** A piece of HTML known to be safe (built by {@link html} from escaped parts). */
export class SafeHtml {
  readonly value: string
  constructor (value: string) { this.value = value }
  toString (): string { return this.value }
}

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for an HTML element's content or a quoted attribute value. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => ESCAPES[c] ?? c)
}

type Part = SafeHtml | string | number | boolean | null | undefined | readonly Part[]

function render (part: Part): string {
  if (part === null || part === undefined || part === false) return ''
  if (part instanceof SafeHtml) return part.value
  if (Array.isArray(part)) return part.map(render).join('')
  return escapeHtml(String(part))
}

/** `html\`<td>${value}</td>\``: every value is escaped unless it is SafeHtml; arrays are joined; null, undefined and false render nothing. */
export function html (strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '')
  return new SafeHtml(out)
}

/** An untrusted value as indented JSON text (a Buffer that did not decode: its bytes in base64). */
export function formatValue (value: unknown): string {
  if (value === undefined) return '(none)'
  if (Buffer.isBuffer(value)) return `(${value.length} bytes that do not decode with the serde; base64)\n${value.toString('base64')}`
  try {
    return JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v, 2) ?? String(value)
  } catch {
    return String(value)
  }
}

/** A duration in ms, in words: `850 ms`, `12 s`, `4 min 5 s`, `3 h 2 min`, `2 d 4 h`. */
export function formatDuration (ms: number): string {
  if (!Number.isFinite(ms)) return '—'
  const abs = Math.abs(ms)
  const sign = ms < 0 ? '-' : ''
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`
  const s = Math.floor(abs / 1000)
  if (s < 60) return `${sign}${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${sign}${m} min${s % 60 > 0 ? ` ${s % 60} s` : ''}`
  const h = Math.floor(m / 60)
  if (h < 24) return `${sign}${h} h${m % 60 > 0 ? ` ${m % 60} min` : ''}`
  const d = Math.floor(h / 24)
  return `${sign}${d} d${h % 24 > 0 ? ` ${h % 24} h` : ''}`
}

/** An epoch-ms time as ISO 8601 (UTC), in a `<time>` element the client shows as a relative age too. */
export function time (ms: number | undefined): SafeHtml {
  if (ms === undefined || !Number.isFinite(ms)) return html`—`
  const iso = new Date(ms).toISOString()
  return html`<time datetime="${iso}" data-ms="${ms}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`
}

/** A count with thousands separators. */
export function count (n: number): string {
  return n.toLocaleString('en-US')
}
