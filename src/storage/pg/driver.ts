/**
 * What PgStorage needs of the `pg` driver (node-postgres), as structural types: a program that
 * never uses PgStorage needs neither `pg` nor its types, and `pg` is loaded on the first connect.
 */
import { StorageError } from '../../errors.ts'

/** A query as node-postgres takes it. */
export interface PgQuery {
  readonly text: string
  readonly values?: unknown[]
  /** Prepared once per connection under this name. */
  readonly name?: string
  readonly rowMode?: 'array'
  readonly types?: { getTypeParser: (oid: number, format?: string) => unknown }
}

export interface PgResult {
  rows: unknown[][]
  rowCount: number | null
}

/** Anything that runs queries: a `pg.Pool`, a `pg.Client`, a `pg.PoolClient`. */
export interface PgQueryable {
  query: (query: PgQuery) => Promise<PgResult>
}

/** A `pg.Client` (or a pool's client): queries, notifications, events. */
export interface PgClient extends PgQueryable {
  on: (event: string, listener: (...args: any[]) => void) => unknown
  off?: (event: string, listener: (...args: any[]) => void) => unknown
  removeListener: (event: string, listener: (...args: any[]) => void) => unknown
}

/** A `pg.PoolClient`: a client to give back. */
export interface PgPoolClient extends PgClient {
  release: (err?: Error | boolean) => void
}

/** A `pg.Pool`. */
export interface PgPool extends PgQueryable {
  connect: () => Promise<PgPoolClient>
  on: (event: string, listener: (...args: any[]) => void) => unknown
}

/** The parts of the `pg` module PgStorage uses. */
export interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPool & { end: () => Promise<void> }
  Client: new (config: Record<string, unknown>) => PgClient & { connect: () => Promise<void>, end: () => Promise<void> }
  types: { getTypeParser: (oid: number, format?: string) => unknown }
}

let loaded: Promise<PgModule> | undefined

/** Imports `pg` once; a StorageError says how to install it when it is missing. */
export function loadPg (): Promise<PgModule> {
  loaded ??= import('pg').then(
    (mod: any) => (mod.default ?? mod) as PgModule,
    (err: unknown) => {
      loaded = undefined
      throw new StorageError('PgStorage needs the `pg` package: npm install pg', err)
    }
  )
  return loaded
}

const INT8 = 20
const INT8_ARRAY = 1016

function parseInt8Array (text: string): Array<number | null> {
  if (text === '{}') return []
  return text.slice(1, -1).split(',').map(v => v === 'NULL' ? null : Number(v))
}

/**
 * Type parsers for PgStorage's queries: bigint columns (epoch ms, stamps, counts) as numbers —
 * exact up to 2^53, which every value relayq stores stays below. Per query, so a pool shared
 * with the application keeps its own parsers.
 */
export function typeParsers (pg: PgModule): NonNullable<PgQuery['types']> {
  return {
    getTypeParser (oid: number, format?: string) {
      if (oid === INT8) return Number
      if (oid === INT8_ARRAY) return parseInt8Array
      return pg.types.getTypeParser(oid, format)
    }
  }
}
