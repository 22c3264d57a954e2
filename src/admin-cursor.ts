/**
 * The opaque cursors of Admin: a page position (listJobs) or the progress of a bulk action. A
 * cursor is base64url JSON plus a checksum: one that was cut, edited or made for another query is
 * refused with InvalidArgumentError naming `cursor`, and nothing is done.
 */
import { InvalidArgumentError } from './errors.ts'
import { crc32 } from './storage/file/codec.ts'

/** The fields a cursor carries: strings, numbers or null only. */
export type CursorFields = ReadonlyArray<string | number | null>

const VERSION = 1

/** Encodes `fields` as a cursor. */
export function encodeCursor (fields: CursorFields): string {
  const body = Buffer.from(JSON.stringify([VERSION, ...fields])).toString('base64url')
  return `${body}.${crc32(Buffer.from(body)).toString(36)}`
}

/**
 * Decodes a cursor made by {@link encodeCursor} whose first fields equal `expect` (the query it
 * belongs to); returns the fields that follow.
 */
export function decodeCursor (cursor: unknown, expect: CursorFields): Array<string | number | null> {
  const bad = (why: string): never => { throw new InvalidArgumentError(`Expected \`cursor\` to be a cursor this call returned, ${why}`) }
  if (typeof cursor !== 'string' || cursor.length > 4096) return bad(`got ${typeof cursor}`)
  const dot = cursor.lastIndexOf('.')
  const body = cursor.slice(0, dot)
  if (dot < 0 || crc32(Buffer.from(body)).toString(36) !== cursor.slice(dot + 1)) return bad('but its checksum does not match')
  let fields: unknown
  try {
    fields = JSON.parse(Buffer.from(body, 'base64url').toString())
  } catch {
    return bad('but it does not decode')
  }
  if (!Array.isArray(fields) || fields[0] !== VERSION || !fields.every(f => f === null || typeof f === 'string' || (typeof f === 'number' && Number.isFinite(f)))) {
    return bad('but it does not decode')
  }
  for (let i = 0; i < expect.length; i++) if (fields[i + 1] !== expect[i]) return bad('but it belongs to another query')
  return fields.slice(1 + expect.length)
}
