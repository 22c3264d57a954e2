import { describeValue, InvalidArgumentError } from './errors.ts'
import type { Logger } from './types.ts'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

/** The logger used when none is given: logs nothing. */
export const SILENT: Logger = Object.freeze({ debug () {}, info () {}, warn () {}, error () {} })

/**
 * Validates a pino-style logger option (`debug`, `info`, `warn` and `error` must be functions) and
 * returns it guarded: a logger that throws never breaks relayq (its exception is dropped, since
 * there is nowhere left to report it). `child(bindings)`, when the logger has it, returns a
 * guarded child, or the guarded parent if it fails.
 * @throws InvalidArgumentError naming the missing level, at construction of the component.
 */
export function checkLogger (value: unknown, name = 'logger'): Logger {
  if (value === undefined) return SILENT
  if (value === null || typeof value !== 'object') throw new InvalidArgumentError(`Expected \`${name}\` to be a pino-style logger, got \`${describeValue(value)}\` (${value === null ? 'null' : typeof value})`)
  for (const level of LEVELS) {
    let fn: unknown
    try {
      fn = (value as Record<string, unknown>)[level]
    } catch {}
    if (typeof fn !== 'function') throw new InvalidArgumentError(`Expected \`${name}.${level}\` to be a function, got ${typeof fn}`)
  }
  return guard(value as Logger)
}

/** Marks loggers already guarded, so that guarding twice (a Queue, then its Consumer) adds no layer. */
const GUARDED = new WeakSet<Logger>()

function guard (logger: Logger): Logger {
  if (GUARDED.has(logger)) return logger
  const call = (level: string) => (obj: unknown, msg?: string): void => {
    try {
      const fn = (logger as unknown as Record<string, unknown>)[level]
      if (typeof fn === 'function') fn.call(logger, obj, msg)
    } catch {}
  }
  const guarded: Logger & { trace: Logger['debug'], fatal: Logger['error'], child: (bindings: Record<string, unknown>) => Logger } = {
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    // pino's other levels, when the logger has them (a call to a missing one does nothing).
    trace: call('trace'),
    fatal: call('fatal'),
    child (bindings) {
      try {
        const child = (logger as { child?: unknown }).child
        if (typeof child === 'function') return checkLogger(child.call(logger, bindings) as unknown)
      } catch {}
      return guarded
    }
  }
  GUARDED.add(guarded)
  return guarded
}
