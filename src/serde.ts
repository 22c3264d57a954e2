import { Packr } from 'msgpackr'

/** Turns values into bytes and back. Payloads and results each have one. */
export interface Serde<T = unknown> {
  /** Encodes `value`; throws when it cannot be encoded. */
  serialize (value: T): Buffer
  /** Decodes bytes produced by `serialize`. */
  deserialize (data: Buffer): T
}

const EMPTY = Buffer.alloc(0)

/**
 * JSON, the default. `undefined` encodes as zero bytes and decodes back to `undefined`, so a
 * handler returning nothing completes normally. Values JSON cannot represent faithfully
 * (functions, symbols, BigInt) throw instead of being silently dropped.
 */
export class JsonSerde<T = unknown> implements Serde<T> {
  serialize (value: T): Buffer {
    if (value === undefined) return EMPTY
    const text = JSON.stringify(value)
    // JSON.stringify returns undefined for functions and symbols: refuse rather than lose data.
    if (typeof text !== 'string') throw new TypeError(`Cannot encode a value of type ${typeof value} as JSON`)
    return Buffer.from(text)
  }

  deserialize (data: Buffer): T {
    if (data.length === 0) return undefined as T
    return JSON.parse(data.toString()) as T
  }
}

/** A new {@link JsonSerde} (the factory @platformatic/job-queue users know). */
export function createJsonSerde<T> (): Serde<T> {
  return new JsonSerde<T>()
}

/** MessagePack via msgpackr: smaller and faster for binary-heavy data; keeps Dates, Maps, Buffers. */
export class MsgpackSerde<T = unknown> implements Serde<T> {
  readonly #packr = new Packr({ useRecords: false, moreTypes: true })

  serialize (value: T): Buffer {
    if (value === undefined) return EMPTY
    if (typeof value === 'function' || typeof value === 'symbol') {
      throw new TypeError(`Cannot encode a value of type ${typeof value} as MessagePack`)
    }
    return this.#packr.pack(value)
  }

  deserialize (data: Buffer): T {
    if (data.length === 0) return undefined as T
    return this.#packr.unpack(data) as T
  }
}

/** A stored error: what a waiter in another process needs to rebuild it. */
export interface ErrorRecord { message: string, name?: string, code?: string, stack?: string }

/** Encodes a handler error as JSON bytes (always JSON, whatever the result serde). */
export function encodeError (error: unknown): Buffer {
  const e = error instanceof Error ? error : new Error(String(error))
  const record: ErrorRecord = { message: e.message, name: e.name }
  const code = (e as { code?: unknown }).code
  if (typeof code === 'string') record.code = code
  if (typeof e.stack === 'string') record.stack = e.stack
  return Buffer.from(JSON.stringify(record))
}

/** Decodes bytes from {@link encodeError}; tolerates foreign or damaged data. */
export function decodeError (data: Buffer | undefined): ErrorRecord {
  if (data === undefined || data.length === 0) return { message: 'Unknown error' }
  try {
    const parsed = JSON.parse(data.toString()) as ErrorRecord
    if (typeof parsed?.message === 'string') return parsed
  } catch {}
  return { message: data.toString() }
}
