/**
 * Live updates over Server-Sent Events: one timer for all open streams samples the counts (through
 * the shared {@link Sampler}) and tells every stream when they changed; the page then fetches the
 * fresh part it shows. The timer runs only while a stream is open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Sampler, Snapshot } from './sampler.ts'

/** Streams are sent a comment this often so proxies keep them open (ms). */
const KEEPALIVE = 15_000

/** What a stream's `snapshot` event carries: enough to decide to refresh, and the chart's data. */
export function streamMessage (snap: Snapshot): { version: string, at: number, series: Snapshot['series'] } {
  return { version: snap.version, at: snap.at, series: snap.series }
}

/** The set of open event streams and the timer that feeds them. */
export class LiveStreams {
  readonly #sampler: Sampler
  readonly #interval: number
  /** Each open stream, with the key ({@link changeKey}) of the last snapshot it was sent. */
  readonly #clients = new Map<ServerResponse, string>()
  #timer: NodeJS.Timeout | undefined
  #lastKeepalive = 0
  #ticking = false

  constructor (sampler: Sampler, interval: number) {
    this.#sampler = sampler
    this.#interval = interval
  }

  /** Open streams. */
  get size (): number {
    return this.#clients.size
  }

  /** Turns the response into an event stream: the current snapshot at once, then each change. */
  async open (req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive'
    })
    res.write(`retry: ${Math.max(1000, this.#interval)}\n\n`)
    this.#clients.set(res, '')
    const drop = (): void => {
      this.#clients.delete(res)
      if (this.#clients.size === 0) this.#stopTimer()
    }
    req.on('close', drop)
    res.on('error', drop)
    this.#timer ??= setInterval(() => { this.#tick().catch(() => {}) }, this.#interval).unref()
    const snap = await this.#sampler.get()
    // Unless a tick sent it a newer one meanwhile (or it closed): each stream gets a snapshot once.
    if (this.#clients.get(res) !== '') return
    this.#clients.set(res, changeKey(snap))
    send(res, snap)
  }

  /** Ends every stream (on close). */
  closeAll (): void {
    for (const res of this.#clients.keys()) res.end()
    this.#clients.clear()
    this.#stopTimer()
  }

  async #tick (): Promise<void> {
    // A slow storage must not stack samples: one tick at a time.
    if (this.#ticking) return
    this.#ticking = true
    try {
      const snap = await this.#sampler.get()
      const key = changeKey(snap)
      let sent = false
      for (const [res, last] of this.#clients) {
        if (last === key) continue
        this.#clients.set(res, key)
        send(res, snap)
        sent = true
      }
      if (sent) {
        this.#lastKeepalive = Date.now()
      } else if (Date.now() - this.#lastKeepalive >= KEEPALIVE) {
        for (const res of this.#clients.keys()) res.write(': keepalive\n\n')
        this.#lastKeepalive = Date.now()
      }
    } catch {
      // The storage failed this once: the streams stay open and the next tick tries again.
    } finally {
      this.#ticking = false
    }
  }

  #stopTimer (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/**
 * What tells two snapshots apart for a stream: the version, and the chart's current minute (it
 * changes with totals, which change the version, but a new minute starting with no change must
 * still move the chart).
 */
function changeKey (snap: Snapshot): string {
  return `${snap.version} ${String(snap.series.t.at(-1) ?? '')}`
}

function send (res: ServerResponse, snap: Snapshot): void {
  res.write(`event: snapshot\ndata: ${JSON.stringify(streamMessage(snap))}\n\n`)
}
