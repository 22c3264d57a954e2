import { Packr } from 'msgpackr'

export { decodeError, encodeError } from './job-error.ts'

/** Turns values into bytes and back. Payloads and results each have one. */
export interface Serde<T = unknown> {
  /** Encodes `value`; throws when it cannot be encoded. */
  serialize (value: T): Buffer
  /** Decodes bytes produced by `serialize`. */
  deserialize (data: Buffer): T
}

const EMPTY = Buffer.alloc(0)
/** Deepest nesting the checks follow; deeper (or circular) values are refused. */
const MAX_DEPTH = 1000

/**
 * JSON, the default. It stores a value exactly or throws (a TypeError, which `enqueue` reports as
 * InvalidArgumentError, storing nothing), with one documented conversion:
 * - an object property whose value is `undefined` is left out (reading it back gives `undefined`);
 * - a value with a `toJSON()` method is stored as its output (a `Date` comes back as its ISO
 *   string, a `Buffer` as `{ type: 'Buffer', data: [...] }`);
 * - an instance of a class is stored as its own enumerable properties (it comes back a plain object);
 * - these throw, because JSON would drop or change them: functions, symbols, BigInt, `NaN` and
 *   `±Infinity`, `undefined` or holes in arrays, `Map`, `Set`, `WeakMap`, `WeakSet`, `RegExp`,
 *   `Error`, `Promise`, `ArrayBuffer` and typed arrays, circular values.
 * A top-level `undefined` encodes as zero bytes and decodes back to `undefined`, so a handler
 * returning nothing completes normally.
 */
export class JsonSerde<T = unknown> implements Serde<T> {
  serialize (value: T): Buffer {
    if (value === undefined) return EMPTY
    // JSON.stringify throws on cycles and BigInt; the walk that follows may then assume neither.
    const text = JSON.stringify(value)
    checkJson(value, 'value', 0)
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

/**
 * MessagePack via msgpackr: smaller and faster for binary-heavy data. Keeps `undefined`, `NaN`,
 * BigInt, Dates, Sets, Buffers and typed arrays, RegExps and Errors (name and message).
 * A `Map` whose keys are all strings comes back as a plain object (MessagePack maps carry no
 * type); these throw at `serialize` (`enqueue` reports InvalidArgumentError, storing nothing):
 * functions and symbols anywhere in the value, a `Map` with a key that is not a string (it would
 * come back with string keys, or not decode at all), values nested deeper than 1000 levels or
 * circular.
 */
export class MsgpackSerde<T = unknown> implements Serde<T> {
  readonly #packr = new Packr({ useRecords: false, moreTypes: true })

  serialize (value: T): Buffer {
    if (value === undefined) return EMPTY
    checkMsgpack(value, 'value', 0)
    return this.#packr.pack(value)
  }

  deserialize (data: Buffer): T {
    if (data.length === 0) return undefined as T
    return this.#packr.unpack(data) as T
  }
}

function refuse (path: string, what: string, format: string): never {
  throw new TypeError(`Cannot encode ${path} as ${format}: ${what}`)
}

/** Objects JSON.stringify turns into `{}` (or an index map), losing what they hold. */
function lossyInJson (value: object): string | undefined {
  if (value instanceof Map) return 'a Map (JSON stores it as {})'
  if (value instanceof Set) return 'a Set (JSON stores it as {})'
  if (value instanceof WeakMap || value instanceof WeakSet) return 'a WeakMap or WeakSet'
  if (value instanceof RegExp) return 'a RegExp (JSON stores it as {})'
  if (value instanceof Error) return 'an Error (JSON stores it as {})'
  if (value instanceof Promise) return 'a Promise'
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return 'binary data (use MsgpackSerde, or base64 it)'
  return undefined
}

/** Throws unless `value` (already accepted by JSON.stringify, so acyclic) stores exactly as JSON. */
function checkJson (value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case 'object': {
      if (value === null) return
      if (depth > MAX_DEPTH) refuse(path, `nested deeper than ${MAX_DEPTH} levels`, 'JSON')
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          if (item === undefined) refuse(`${path}[${i}]`, 'undefined in an array (JSON stores it as null)', 'JSON')
          if (typeof item !== 'string') checkJson(item, `${path}[${i}]`, depth + 1)
        }
        return
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return
      const proto = Object.getPrototypeOf(value) as unknown
      if (proto !== Object.prototype && proto !== null) {
        const lossy = lossyInJson(value)
        if (lossy !== undefined) refuse(path, lossy, 'JSON')
      }
      const keys = Object.keys(value)
      for (let i = 0; i < keys.length; i++) {
        const item = (value as Record<string, unknown>)[keys[i]]
        // undefined properties are left out: the one conversion JsonSerde documents.
        if (item !== undefined && typeof item !== 'string') checkJson(item, `${path}.${keys[i]}`, depth + 1)
      }
      return
    }
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value} (JSON stores it as null)`, 'JSON')
      return
    case 'function':
    case 'symbol':
      refuse(path, `a ${typeof value} (JSON drops it)`, 'JSON')
  }
}

/** Throws unless `value` stores as MessagePack and decodes back to the same data. */
function checkMsgpack (value: unknown, path: string, depth: number): void {
  switch (typeof value) {
    case 'object': {
      if (value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) return
      if (depth > MAX_DEPTH) refuse(path, `nested deeper than ${MAX_DEPTH} levels, or circular`, 'MessagePack')
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) checkMsgpack(value[i], `${path}[${i}]`, depth + 1)
        return
      }
      if (value instanceof Map) {
        for (const [key, item] of value) {
          if (typeof key !== 'string') refuse(path, `a Map with a ${typeof key} key (only string keys survive MessagePack)`, 'MessagePack')
          checkMsgpack(item, `${path}.get(${JSON.stringify(key)})`, depth + 1)
        }
        return
      }
      if (value instanceof Set) {
        for (const item of value) checkMsgpack(item, `${path} (a Set member)`, depth + 1)
        return
      }
      const keys = Object.keys(value)
      for (let i = 0; i < keys.length; i++) checkMsgpack((value as Record<string, unknown>)[keys[i]], `${path}.${keys[i]}`, depth + 1)
      return
    }
    case 'function':
    case 'symbol':
      refuse(path, `a ${typeof value} (MessagePack cannot store it)`, 'MessagePack')
  }
}
