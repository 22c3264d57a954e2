/**
 * The trace context a job carries from its producer to its workers ({@link NewJob.trace}): the
 * W3C `traceparent` (version 00, 55 characters), then, when there is one, a space and the W3C
 * `tracestate` (https://www.w3.org/TR/trace-context/). At most {@link MAX_TRACE_BYTES} bytes.
 *
 * Backends store it as it is and validate it on both sides: {@link validTrace} is applied before
 * anything is stored (a value that is too large or malformed is dropped, the job is stored
 * without it) and to what is read back (stored data is untrusted). The check is a pattern match
 * on printable ASCII: nothing in it is ever evaluated, used as a key, a path or in a query.
 * No dependency: every backend imports it, with or without `@opentelemetry/api`.
 */
import type { NewJob } from './storage/types.ts'

/** The longest trace context stored with a job, in bytes. */
export const MAX_TRACE_BYTES = 512

/** traceparent version 00: `00-<trace id>-<span id>-<flags>`, lower-case hex; all-zero ids are invalid. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/
const TRACEPARENT_LENGTH = 55
/** One tracestate list member: `key=value` (simple or multi-tenant key; value without `,` and `=`, no trailing space). */
const MEMBER = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/
/** Most list members of a tracestate. */
const MAX_MEMBERS = 32

/**
 * `value` when it is a trace context as described above, else undefined. Every accepted character
 * is ASCII, so its length is its size in bytes.
 */
export function validTrace (value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length < TRACEPARENT_LENGTH || value.length > MAX_TRACE_BYTES) return undefined
  if (!TRACEPARENT.test(value.length === TRACEPARENT_LENGTH ? value : value.slice(0, TRACEPARENT_LENGTH))) return undefined
  if (value.length === TRACEPARENT_LENGTH) return value
  if (value.charCodeAt(TRACEPARENT_LENGTH) !== 0x20) return undefined
  const members = value.slice(TRACEPARENT_LENGTH + 1).split(',')
  if (members.length > MAX_MEMBERS) return undefined
  for (const member of members) if (!MEMBER.test(member)) return undefined
  return value
}

/** The traceparent part of a valid trace context. */
export function traceparentOf (trace: string): string {
  return trace.slice(0, TRACEPARENT_LENGTH)
}

/** The tracestate part of a valid trace context, '' when none. */
export function tracestateOf (trace: string): string {
  return trace.slice(TRACEPARENT_LENGTH + 1)
}

/** The trace context of a job about to be stored: `job.trace` if valid, else undefined (then not stored). */
export function traceToStore (job: NewJob): string | undefined {
  return job.trace === undefined ? undefined : validTrace(job.trace)
}
