/**
 * What one PgStorage instance hears on its LISTEN connection, routed per queue: wake-ups end
 * parked claims, `abort` and `done` notices go to subscribers, and a reconnect (`gap`) does both
 * for every queue.
 *
 * Payloads name a queue by its md5 (queue names may be long or hold any byte). A `done` payload
 * is the hash, a space, then records: a state letter (c e x; upper case when the result or error
 * was left out), the base64 id, ':', the base64 body, ';'.
 */
import type { Notice } from '../types.ts'
import { queueHash, type Names } from './names.ts'

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
}

const STATES = { c: 'completed', e: 'failed', x: 'cancelled' } as const

export class Notices {
  readonly #names: Names
  readonly #doneChannel: string
  readonly #slots = new Map<string, QueueSlot>()
  readonly #byHash = new Map<string, QueueSlot>()

  constructor (names: Names, token: string) {
    this.#names = names
    this.#doneChannel = names.doneChannel(token)
  }

  slot (queue: string): QueueSlot {
    let slot = this.#slots.get(queue)
    if (slot === undefined) {
      slot = { queue, gen: 0, emptyAt: undefined, emptyDue: null, parked: new Set(), subscribers: new Set() }
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
