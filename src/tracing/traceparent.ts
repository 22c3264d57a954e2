/**
 * The W3C trace context a job carries from its producer to its worker (https://www.w3.org/TR/trace-context/):
 * its traceparent, and its tracestate when it fits (see src/trace-context.ts for the stored form).
 */
import { MAX_TRACE_BYTES, traceparentOf, tracestateOf, validTrace } from '../trace-context.ts'

/** The parts of a trace context that travel. */
export interface CarriedContext {
  readonly traceId: string
  readonly spanId: string
  readonly traceFlags: number
}

/** A carried context with its tracestate ('' when none). */
export interface CarriedTrace extends CarriedContext {
  readonly traceState: string
}

const PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** `00-<trace id>-<span id>-<flags>`. */
export function formatTraceparent (context: CarriedContext): string {
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** The context in a traceparent, or undefined when it is not one (all-zero ids are invalid). */
export function parseTraceparent (text: string | undefined): CarriedContext | undefined {
  if (text === undefined) return undefined
  const match = PATTERN.exec(text)
  if (match === null || /^0+$/.test(match[1]) || /^0+$/.test(match[2])) return undefined
  return { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16) }
}

/**
 * The trace context to store with a job: the traceparent, plus ' ' and `traceState` (serialized)
 * when there is one and the whole fits in {@link MAX_TRACE_BYTES}: a tracestate too large (or one
 * this module cannot carry) is left out, the traceparent always travels.
 */
export function formatTrace (context: CarriedContext, traceState = ''): string {
  const parent = formatTraceparent(context)
  if (traceState === '' || parent.length + 1 + traceState.length > MAX_TRACE_BYTES) return parent
  return validTrace(`${parent} ${traceState}`) ?? parent
}

/** The context in a job's stored trace context (validated: stored data is untrusted), or undefined. */
export function parseTrace (text: string | undefined): CarriedTrace | undefined {
  const trace = validTrace(text)
  if (trace === undefined) return undefined
  const parent = parseTraceparent(traceparentOf(trace))
  return parent === undefined ? undefined : { ...parent, traceState: tracestateOf(trace) }
}
