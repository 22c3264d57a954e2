/**
 * What one PgStorage instance hears on its LISTEN connection, routed per queue: wake-ups end
 * parked claims, `abort` and `done` notices go to subscribers, and a reconnect (`gap`) does both
 * for every queue.
 *
 * Payloads name a queue by its md5 (queue names may be long or hold any byte). A `done` payload
 * is the hash, a space, then records: a state letter (c e x; upper case when the result or error
 * was left out), the base64 id, ':', the base64 body, ';'.
 */
import type { ClaimedJob, Notice } from '../types.ts'
import { queueHash, type Names } from './names.ts'
import { toClaimed } from './queries.ts'

interface Subscriber {
  readonly type: Notice['type'] | undefined
  readonly fn: (notice: Notice) => void
}

/** One queue as this instance sees it. */
export interface QueueSlot {
  readonly queue: string
  /** Counts wake-ups: a claim that saw it change while it ran claims again instead of waiting. */
  gen: number
  /**
   * The wake-up count at the start of the last claiming call that found fewer ready jobs than it
   * asked for while this instance was listening (undefined: none, or a later one found enough).
   * While `gen` still equals it, no job became ready since: a blocking claim waits at once.
   */
  emptyAt: number | undefined
  /** That call's earliest due time of a delayed or failing job (null: none). */
  emptyDue: number | null
  readonly parked: Set<(woke: boolean) => void>
  readonly subscribers: Set<Subscriber>
  /** Jobs an enqueue handed to this instance's workers (leased to them), by worker id, until a claim takes them. */
  readonly pushed: Map<string, ClaimedJob[]>
}

const STATES = { c: 'completed', e: 'failed', x: 'cancelled' } as const

export class Notices {
  readonly #names: Names
  readonly #doneChannel: string
  readonly #pushChannel: string
  readonly #slots = new Map<string, QueueSlot>()
  readonly #byHash = new Map<string, QueueSlot>()

  constructor (names: Names, token: string) {
    this.#names = names
    this.#doneChannel = names.doneChannel(token)
    this.#pushChannel = names.pushChannel(token)
  }

  /** Takes the jobs handed to `worker` on the slot's queue (none: an empty array). */
  takePushed (slot: QueueSlot, worker: string): ClaimedJob[] {
    const jobs = slot.pushed.get(worker)
    if (jobs === undefined) return []
    slot.pushed.delete(worker)
    return jobs
  }

  slot (queue: string): QueueSlot {
    let slot = this.#slots.get(queue)
    if (slot === undefined) {
      slot = { queue, gen: 0, emptyAt: undefined, emptyDue: null, parked: new Set(), subscribers: new Set(), pushed: new Map() }
      this.#slots.set(queue, slot)
      this.#byHash.set(queueHash(Buffer.from(queue)), slot)
    }
    return slot
  }

  /** Adds a subscriber; returns the function removing it. */
  add (queue: string, fn: (notice: Notice) => void, type: Notice['type'] | undefined): () => void {
    const slot = this.slot(queue)
    // An object per call: the same function subscribed twice is two subscriptions.
    const entry: Subscriber = { type, fn }
    slot.subscribers.add(entry)
    return () => { slot.subscribers.delete(entry) }
  }

  /**
   * Waits up to `ms` for a wake-up of the slot's queue: true when woken, false on timeout or
   * abort (or when the storage closes).
   */
  park (slot: QueueSlot, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise(resolve => {
      const end = (woke: boolean): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        slot.parked.delete(end)
        resolve(woke)
      }
      const onAbort = (): void => end(false)
      const timer = setTimeout(end, ms, false)
      signal?.addEventListener('abort', onAbort, { once: true })
      slot.parked.add(end)
    })
  }

  deliver (channel: string, payload: string): void {
    const space = payload.indexOf(' ')
    const slot = this.#byHash.get(space < 0 ? payload : payload.slice(0, space))
    if (slot === undefined) return
    if (channel === this.#names.wakeChannel) {
      this.#wake(slot)
    } else if (channel === this.#names.abortChannel) {
      this.#send(slot, { type: 'abort', id: Buffer.from(payload.slice(space + 1), 'base64').toString() })
    } else if (channel === this.#doneChannel) {
      decodeDone(payload, space + 1, notice => this.#send(slot, notice))
    } else if (channel === this.#pushChannel) {
      const pushed = decodePushed(payload.slice(space + 1))
      if (pushed === undefined) return
      const list = slot.pushed.get(pushed.worker)
      if (list === undefined) slot.pushed.set(pushed.worker, pushed.jobs)
      else list.push(...pushed.jobs)
      // A waiting claim takes them; the others look again (as for a wake-up).
      this.#wake(slot)
    }
  }

  /** Notices may have been lost: every subscriber hears `gap`, every parked claim looks again. */
  gap (): void {
    for (const slot of this.#slots.values()) {
      this.#wake(slot)
      this.#send(slot, { type: 'gap' })
    }
  }

  /** Ends every parked claim (the storage is closing). */
  closeAll (): void {
    for (const slot of this.#slots.values()) for (const end of [...slot.parked]) end(false)
  }

  #wake (slot: QueueSlot): void {
    slot.gen++
    for (const end of [...slot.parked]) end(true)
  }

  #send (slot: QueueSlot, notice: Notice): void {
    for (const s of slot.subscribers) {
      if (notice.type !== 'gap' && s.type !== undefined && s.type !== notice.type) continue
      try {
        s.fn(notice)
      } catch (err) {
        // A throwing listener must not cost the others their notices: rethrown on its own.
        queueMicrotask(() => { throw err })
      }
    }
  }
}

function decodeDone (payload: string, from: number, emit: (notice: Notice) => void): void {
  let at = from
  while (at < payload.length) {
    const colon = payload.indexOf(':', at)
    const end = payload.indexOf(';', colon)
    if (colon < 0 || end < 0) return // not ours
    const letter = payload[at]
    const lower = letter.toLowerCase() as keyof typeof STATES
    const state = STATES[lower]
    if (state === undefined) return
    const id = Buffer.from(payload.slice(at + 1, colon), 'base64').toString()
    const inline = letter === lower
    const body = Buffer.from(payload.slice(colon + 1, end), 'base64')
    at = end + 1
    if (state === 'completed') emit({ type: 'done', id, state, ...(inline && { result: body }) })
    else if (state === 'failed') emit({ type: 'done', id, state, ...(inline && { error: body }) })
    else emit({ type: 'done', id, state })
  }
}

/** A `push` notice: `[worker, [[id, payload, attempts, max_attempts, result_ttl, created_at, run_timeout, ready_at, trace], ...]]`. */
function decodePushed (json: string): { worker: string, jobs: ClaimedJob[] } | undefined {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return undefined // not ours
  }
  if (!Array.isArray(value) || typeof value[0] !== 'string' || !Array.isArray(value[1])) return undefined
  const jobs: ClaimedJob[] = []
  for (const j of value[1] as unknown[][]) {
    if (!Array.isArray(j) || typeof j[0] !== 'string' || typeof j[1] !== 'string') return undefined
    jobs.push(toClaimed([Buffer.from(j[0], 'base64'), Buffer.from(j[1], 'base64'), j[2], j[3], j[4], j[5], j[6], j[7], null, null, j[8]]))
  }
  return { worker: Buffer.from(value[0], 'base64').toString(), jobs }
}
