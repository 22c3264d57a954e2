/**
 * What a stored value (a payload, a result, an error) must be before it is sent to a storage:
 * bytes, and no more of them than the storage stores per value. Checked where the value is made
 * (the producer, the consumer), so that one bad value costs its own job and never a batch.
 */
import { InvalidArgumentError, SerdeError, StorageError } from './errors.ts'
import type { Storage } from './storage/types.ts'

/** Largest value a storage stores when it does not say: 512 MiB (Redis's default `proto-max-bulk-len`). */
export const DEFAULT_MAX_VALUE_BYTES = 512 * 1024 * 1024

/** The largest payload, result or error `storage` stores, in bytes. */
export function maxValueBytes (storage: Storage): number {
  return storage.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
}

function kind (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return `a ${typeof value}`
  let tag: string
  try {
    tag = Object.prototype.toString.call(value).slice(8, -1)
  } catch {
    tag = 'Object'
  }
  return `an object (${tag})`
}

/**
 * The value a serde's `serialize` returned (`what` says whose, "The result of job 'x'"), as a
 * Buffer that `storage` can store: a Buffer as it is, any other Uint8Array wrapped without a copy.
 * Returns the error to fail the job with instead: a SerdeError when it is not bytes (the Serde
 * contract), an InvalidArgumentError when it is larger than the storage stores.
 */
export function storable (value: unknown, max: number, what: string): Buffer | SerdeError | InvalidArgumentError {
  let bytes: Buffer
  if (Buffer.isBuffer(value)) bytes = value
  else if (value instanceof Uint8Array) bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  else return new SerdeError(`${what}: serialize() returned ${kind(value)} instead of a Buffer or Uint8Array`)
  if (bytes.length > max) return tooLarge(what, bytes.length, max)
  return bytes
}

/** The error of a value larger than the storage stores. */
export function tooLarge (what: string, size: number, max: number): InvalidArgumentError {
  return new InvalidArgumentError(`${what} is ${size} bytes: larger than the storage stores per value (${max} bytes)`)
}

/**
 * True when a storage call failed because the storage could not be reached or did not answer in
 * time (a StorageError that is `retryable`): sent again later, it may succeed. Any other failure
 * means the storage refused something in the call itself.
 */
export function unavailable (err: unknown): boolean {
  return err instanceof StorageError && err.retryable
}
