/**
 * The names PgStorage gives its tables, functions and notification channels, from a validated
 * schema and table prefix. Identifiers are the only thing ever spliced into SQL text, and only
 * after {@link checkIdentifier}: every value travels as a query parameter.
 */
import { createHash } from 'node:crypto'
import { InvalidArgumentError } from '../../errors.ts'

/** Lower-case letters, digits and underscores, not starting with a digit: needs no quoting rules beyond "...". */
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/

/** Longest table prefix: the longest name built from it (`<prefix>migrations`) stays within PostgreSQL's 63 bytes. */
export const MAX_PREFIX = 40

/** Throws an InvalidArgumentError naming `option` unless `value` is a plain identifier of at most `max` characters. */
export function checkIdentifier (option: string, value: unknown, max: number, allowEmpty = false): string {
  if (typeof value !== 'string' || (value.length === 0 && !allowEmpty) || value.length > max || (value.length > 0 && !IDENTIFIER.test(value))) {
    throw new InvalidArgumentError(
      `Expected \`${option}\` to be ${allowEmpty ? 'empty or ' : ''}lower-case letters, digits and underscores (not starting with a digit), at most ${max} characters, got ${JSON.stringify(value)}`
    )
  }
  return value
}

/** Every database object of one storage namespace (schema + prefix), quoted and schema-qualified. */
export class Names {
  readonly schema: string
  readonly prefix: string
  /** `"schema"` */
  readonly quotedSchema: string
  /** Base of the NOTIFY channels: `rq` and 10 hex digits of a hash of schema and prefix (channels are database-wide). */
  readonly channel: string
  /** Key of the advisory lock that serializes migrations of this namespace. */
  readonly migrationLock: string

  constructor (schema: string, prefix: string) {
    this.schema = schema
    this.prefix = prefix
    this.quotedSchema = `"${schema}"`
    this.channel = 'rq' + createHash('sha256').update(`${schema}.${prefix}`).digest('hex').slice(0, 10)
    this.migrationLock = `relayq:${schema}.${prefix}`
  }

  /** A table or function of the namespace: `"schema"."<prefix><name>"`. */
  of (name: string): string {
    return `"${this.schema}"."${this.prefix}${name}"`
  }

  /** The channel of wake-ups (payload: the queue's hash). */
  get wakeChannel (): string { return `${this.channel}_w` }

  /** The channel of abort notices (payload: queue hash, space, base64 id). */
  get abortChannel (): string { return `${this.channel}_a` }

  /** The channel of the jobs an enqueue hands to one storage instance's waiting consumers. */
  pushChannel (token: string): string { return `${this.channel}_j${token}` }

  /** The channel of one storage instance's `done` notices. */
  doneChannel (token: string): string { return `${this.channel}_d${token}` }
}

/** The hash that names a queue in notification payloads (PostgreSQL's `md5(queue)`). */
export function queueHash (queue: Buffer): string {
  return createHash('md5').update(queue).digest('hex')
}
