/** The W3C `traceparent` a job carries from its producer to its worker (https://www.w3.org/TR/trace-context/). */

/** The parts of a trace context that travel. */
export interface CarriedContext {
  readonly traceId: string
  readonly spanId: string
  readonly traceFlags: number
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
