import { describeValue, read, safeMessage } from './errors.ts'
import type { SerializedError } from './types.ts'

/**
 * The Error to record for whatever a handler threw, rejected with or passed to `done` (also what
 * `afterExecution` left in `context.error`). Never throws, whatever it is given:
 * - an Error whose `message` reads as a string is returned as it is;
 * - a plain object with a string `message` (`{ message, code }`) becomes an Error with that
 *   message and that string `code`;
 * - a string becomes an Error with that message;
 * - anything else (`null`, `Object.create(null)`, an object whose `toString` throws, an Error whose
 *   `message` getter throws) becomes an Error describing it, with the value as its `cause`.
 */
export function toError (thrown: unknown): Error {
  let isError = false
  try {
    isError = thrown instanceof Error
  } catch {}
  const message = read(thrown, 'message')
  if (isError && message !== undefined) return thrown as Error
  if (typeof thrown === 'string') return new Error(thrown)
  if (message !== undefined && typeof thrown === 'object') {
    const error = new Error(message, { cause: thrown })
    const code = read(thrown, 'code')
    if (code !== undefined) Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true })
    return error
  }
  const what = isError
    ? `an Error whose message cannot be read (${read(thrown, 'name') ?? 'Error'})`
    : `a non-Error value: ${describeThrown(thrown)}`
  return new Error(`The handler threw ${what}`, { cause: thrown })
}

function describeThrown (value: unknown): string {
  try {
    if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === null) {
      const json = describeValue(value)
      return json.startsWith('{') ? `an object without a prototype ${json}` : 'an object without a prototype'
    }
  } catch {}
  return describeValue(value)
}

/**
 * Encodes a job's final error as JSON bytes (always JSON, whatever the result serde), as
 * @platformatic/job-queue stores it: the output of the error's `toJSON()` when it has one that
 * returns an object (so `getStatus(id).error` deep-equals `err.toJSON()`), else `message`,
 * `name`, `code` (when a string) and `stack`. Never throws.
 */
export function encodeError (error: unknown): Buffer {
  try {
    const toJSON = (error as { toJSON?: unknown })?.toJSON
    if (typeof toJSON === 'function') {
      const json = toJSON.call(error) as unknown
      if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
        const text = JSON.stringify(json)
        if (typeof text === 'string') return Buffer.from(text)
      }
    }
  } catch {
    // A toJSON that throws, or output JSON cannot encode (circular, BigInt): the plain record below.
  }
  const e = toError(error)
  const record: SerializedError = { message: safeMessage(e) }
  const name = read(e, 'name')
  if (name !== undefined) record.name = name
  const code = read(e, 'code')
  if (code !== undefined) record.code = code
  const stack = read(e, 'stack')
  if (stack !== undefined) record.stack = stack
  return Buffer.from(JSON.stringify(record))
}

/** Decodes bytes from {@link encodeError}: the stored object as it is; tolerates foreign or damaged data. */
export function decodeError (data: Buffer | undefined): SerializedError {
  if (data === undefined || data.length === 0) return { message: 'Unknown error' }
  const text = data.toString()
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as SerializedError
  } catch {}
  return { message: text }
}
