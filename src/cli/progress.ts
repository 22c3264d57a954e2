/**
 * Progress of bulk work on stderr: a bar redrawn in place on a TTY (count, rate, ETA), or, with
 * `--progress` on a pipe, a plain line per update (the first at once, then at most one a second).
 */
import { count, span, type Sink } from './output.ts'

export type ProgressMode = 'bar' | 'lines' | 'off'

export class Progress {
  readonly #sink: Sink
  readonly #label: string
  readonly #total: number | undefined
  readonly #mode: ProgressMode
  readonly #clock: () => number
  readonly #started: number
  #lastLine = -Infinity
  #drawn = false

  constructor (sink: Sink, label: string, total: number | undefined, mode: ProgressMode, clock: () => number = Date.now) {
    this.#sink = sink
    this.#label = label
    this.#total = total
    this.#mode = mode
    this.#clock = clock
    this.#started = clock()
  }

  /** `done` jobs so far. */
  update (done: number): void {
    if (this.#mode === 'off') return
    const now = this.#clock()
    if (this.#mode === 'lines') {
      if (now - this.#lastLine < 1000) return
      this.#lastLine = now
      this.#sink.write(`${this.#text(done, now)}\n`)
      return
    }
    this.#drawn = true
    const text = this.#text(done, now)
    const width = Math.max(20, (this.#sink.columns ?? 80) - 1)
    const total = this.#total
    let bar = ''
    if (total !== undefined && total > 0) {
      const room = Math.min(30, width - text.length - 3)
      if (room >= 10) {
        const full = Math.round(room * Math.min(1, done / total))
        bar = `[${'#'.repeat(full)}${'-'.repeat(room - full)}] `
      }
    }
    this.#sink.write(`\r\u001b[K${(bar + text).slice(0, width)}`)
  }

  /** Clears the bar (the caller prints its summary next). */
  finish (): void {
    if (this.#mode === 'bar' && this.#drawn) this.#sink.write('\r\u001b[K')
  }

  #text (done: number, now: number): string {
    const seconds = (now - this.#started) / 1000
    const rate = seconds > 0 ? done / seconds : 0
    const total = this.#total
    let text = `${this.#label} ${count(done)}${total === undefined ? '' : `/${count(total)}`}`
    if (total !== undefined && total > 0) text += ` ${Math.floor(100 * Math.min(1, done / total))}%`
    if (rate > 0) text += ` ${count(Math.round(rate))}/s`
    if (total !== undefined && rate > 0 && done < total) text += ` ETA ${span(1000 * (total - done) / rate)}`
    return text
  }
}
