/**
 * Failure groups: failed jobs whose errors look alike (same name, same message once its variable
 * parts are blanked out, same top stack frame) form one group, so "5,000 jobs failed" reads as
 * "one bug, 5,000 times". Computed where the error is at hand (the consumer, the reaper) and
 * stored with the failure (see ErrorGroup in storage/types.ts).
 */
import { createHash } from 'node:crypto'
import type { ErrorGroup } from './storage/types.ts'

/** Longest normalized message kept, in UTF-16 units. */
const MAX_MESSAGE = 200

/** Variable parts of a message, most specific first, and what replaces them. */
const VARIABLE: ReadonlyArray<[RegExp, string]> = [
  [/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '<str>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b(?:0x)?[0-9a-f]{8,}\b/gi, '<hex>'],
  [/\d+(?:\.\d+)?/g, '<n>']
]

/** The message with numbers, ids, hex strings and quoted strings replaced, whitespace collapsed. */
export function normalizeMessage (message: string): string {
  let text = message
  for (const [pattern, replacement] of VARIABLE) {
    // A run of hex letters without a digit is a word ('deadline', 'facade'), not an id.
    text = text.replace(pattern, match => replacement === '<hex>' && !/\d/.test(match) ? match : replacement)
  }
  text = text.replace(/\s+/g, ' ').trim()
  return text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE) : text
}

/**
 * The top frame of a V8 stack (`at fn (file:line:col)`) without its line and column, which move
 * with every deploy; '' when there is none.
 */
export function topFrame (stack: string | undefined): string {
  if (typeof stack !== 'string') return ''
  for (const line of stack.split('\n')) {
    const trimmed = line.trim()
    if (trimmed.startsWith('at ')) return trimmed.slice(3).replace(/:\d+(?::\d+)?(\)?)$/, '$1')
  }
  return ''
}

/** The failure group of an error (an Error, or a stored error record `{ name, message, stack }`). */
export function failureGroup (error: { name?: unknown, message?: unknown, stack?: unknown }): ErrorGroup {
  const name = typeof error.name === 'string' ? error.name : 'Error'
  const message = normalizeMessage(typeof error.message === 'string' ? error.message : '')
  const frame = topFrame(typeof error.stack === 'string' ? error.stack : undefined)
  const key = createHash('sha256').update(`${name}\0${message}\0${frame}`).digest('hex').slice(0, 16)
  return { key, name, message, frame }
}
