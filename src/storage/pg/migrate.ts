/**
 * Versioned, idempotent migrations. `connect()` runs the ones the database lacks, in one
 * transaction under an advisory lock, so many processes starting at once apply each exactly once
 * (the others wait, then find it applied). A database migrated by a newer relayq is refused.
 */
import { StorageError } from '../../errors.ts'
import type { PgQueryable } from './driver.ts'
import type { Names } from './names.ts'
import { helpers, tables } from './schema.ts'
import { claimFunctions } from './sql-claim.ts'
import { dataFunctions } from './sql-data.ts'
import { adminFunctions } from './sql-admin.ts'
import { laneLocks } from './sql-lanes.ts'
import { pushClaims } from './sql-push.ts'

interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: (n: Names) => string
}

/** Every migration, oldest first. Append only: a released migration never changes. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'jobs, queues, history, workers, locks and their functions', sql: n => tables(n) + helpers(n) + dataFunctions(n) + adminFunctions(n) },
  { version: 2, name: 'jobs carry a trace context', sql: traceContext },
  { version: 3, name: 'claim and settle: one block of stamps and one counter update per call, no fencing read', sql: claimFunctions },
  { version: 4, name: 'lanes reserved by advisory locks instead of row locks', sql: laneLocks },
  { version: 5, name: 'an enqueue hands new jobs to a waiting consumer', sql: pushClaims }
]

/**
 * Migration 2: a nullable `trace` column on jobs and inbox (added without a rewrite; NULL, the
 * value of every job without one, costs no byte in a row that already has a NULL), and the data
 * functions again with it: enqueue and put take the trace contexts (a new signature: the old one
 * is dropped), claims answer them.
 */
function traceContext (n: Names): string {
  const f = (name: string): string => n.of(name)
  const v1 = 'bytea, bigint, text, bytea[], bytea[], integer[], bigint[], bigint[], bigint[], boolean[]'
  return `
ALTER TABLE ${f('jobs')} ADD COLUMN IF NOT EXISTS trace text;
ALTER TABLE ${f('inbox')} ADD COLUMN IF NOT EXISTS trace text;
DROP FUNCTION IF EXISTS ${f('enqueue')}(${v1});
DROP FUNCTION IF EXISTS ${f('put')}(${v1});
DROP FUNCTION IF EXISTS ${f('enqueue_tx')}(bytea, bigint, bytea[], bytea[], integer[], bigint[], bigint[], bigint[]);
` + dataFunctions(n, true)
}

/** The schema version this code needs. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

/** Applies what is missing, on `client` (a connection of its own: this runs a transaction). */
export async function migrate (client: PgQueryable, n: Names): Promise<void> {
  await client.query({ text: 'BEGIN' })
  try {
    // One lock for every relayq namespace of the database: CREATE SCHEMA IF NOT EXISTS and
    // CREATE TABLE IF NOT EXISTS race with themselves when run at once.
    await client.query({ text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: ['relayq:migrations'] })
    await client.query({ text: `CREATE SCHEMA IF NOT EXISTS ${n.quotedSchema}` })
    await client.query({
      text: `CREATE TABLE IF NOT EXISTS ${n.of('migrations')} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
    })
    const { rows } = await client.query({ text: `SELECT coalesce(max(version), 0) FROM ${n.of('migrations')}`, rowMode: 'array' })
    const current = Number(rows[0][0])
    if (current > SCHEMA_VERSION) {
      throw new StorageError(`The relayq tables ${n.of('jobs')} are at schema version ${current}; this relayq knows up to ${SCHEMA_VERSION}: upgrade relayq`)
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue
      await client.query({ text: m.sql(n) })
      await client.query({ text: `INSERT INTO ${n.of('migrations')} (version, name) VALUES ($1, $2)`, values: [m.version, m.name] })
    }
    await client.query({ text: 'COMMIT' })
  } catch (err) {
    await client.query({ text: 'ROLLBACK' }).catch(() => {})
    throw err
  }
}
