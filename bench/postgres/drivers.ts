/**
 * pg (node-postgres) against postgres (postgres.js) on PgStorage's hot path: the same relayq
 * functions called through each driver. `npx tsx bench/postgres/drivers.ts [postgres://...]`
 * (default: a cluster of its own).
 *
 * - enqueue of one job, sequential: the latency of one call;
 * - settle-and-claim of 50 jobs, sequential: one consumer's batches (bytea arrays in, rows out);
 * - enqueue of one job, 50 in flight: pg over a pool of 10 connections, postgres.js pipelining
 *   over its pool of 10.
 * Client CPU per call is this process's CPU time divided by the calls. The two drivers take turns,
 * twice each (the machine's noise hits both alike).
 */
import pgModule from 'pg'
import postgres from 'postgres'
import { PgStorage } from 'relayq'
import { startCluster } from '../../test/fixtures/pg-server.ts'

const cluster = process.argv[2] === undefined ? await startCluster(['fsync=on', 'synchronous_commit=on']) : undefined
const url = process.argv[2] ?? (cluster as NonNullable<typeof cluster>).url
const setup = new PgStorage({ connectionString: url, tablePrefix: 'drv_' })
await setup.connect()
await setup.clear()

const Q = Buffer.from('q')
const W = Buffer.from('w')
const ENQ = 'SELECT * FROM drv_enqueue($1, $2, $3, $4::bytea[], $5::bytea[], $6::integer[], $7::bigint[], $8::bigint[], $9::bigint[], $10::boolean[], $11::text[])'
const SETTLE = 'SELECT * FROM drv_settle($1, $2, $3, $4::"char"[], $5::bytea[], $6::integer[], $7::bytea[], $8::bigint[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[], $13, $14)'
const enqArgs = (id: string): unknown[] => [Q, Date.now(), null, [Buffer.from(id)], [Buffer.from('{"n":1}')], [3], [3_600_000], [0], [0], [false], null]

type Call = (text: string, values: unknown[]) => Promise<unknown[][]>

async function measure (name: string, calls: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < calls) await fn(next++)
  }))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  console.log(`${name.padEnd(44)} ${(calls / (ms / 1000)).toFixed(0).padStart(7)} calls/s  ${((cpu.user + cpu.system) / calls).toFixed(1).padStart(6)} µs client CPU/call`)
}

async function suite (round: number, driver: string, call: Call): Promise<void> {
  driver = `${driver} #${round + 1}`
  await measure(`${driver}: enqueue 1 job, sequential`, 1000, 1, i => call(ENQ, enqArgs(`${driver}-s-${i}`)))
  await call(ENQ, [Q, Date.now(), null, ...[20_000].flatMap(n => {
    const ids = Array.from({ length: n }, (_, i) => Buffer.from(`${driver}-b-${i}`))
    return [ids, ids.map(() => Buffer.from('{"n":1}')), ids.map(() => 3), ids.map(() => 3_600_000), ids.map(() => 0), ids.map(() => 0), ids.map(() => false), null]
  })])
  let batch: unknown[][] = (await call('SELECT * FROM drv_claim($1, $2, $3, $4, $5)', [Q, Date.now(), W, 50, 600_000])).filter(r => r[0] !== null)
  await measure(`${driver}: settle 50 and claim 50, sequential`, 300, 1, async () => {
    const rows = await call(SETTLE, [Q, Date.now(), W, batch.map(() => 'c'), batch.map(r => r[0]), batch.map(r => r[2]), batch.map(() => Buffer.from('1')),
      batch.map(() => 3_600_000), batch.map(() => null), batch.map(() => null), batch.map(() => null), batch.map(() => null), 50, 600_000])
    batch = rows.filter(r => r[0] !== null)
  })
  await measure(`${driver}: enqueue 1 job, 50 in flight`, 3000, 50, i => call(ENQ, enqArgs(`${driver}-c-${i}`)))
}

const pool = new pgModule.Pool({ connectionString: url, max: 10 })
const bigint = { getTypeParser: (oid: number, format?: any) => oid === 20 ? Number : pgModule.types.getTypeParser(oid, format) }
// postgres.js types an array parameter by its first element (a Buffer: bytea), and the server then
// refuses the cast to the array type (bytea to bytea[], boolean to boolean[]): arrays of Buffers (or
// of nulls, in bytea positions) and of booleans are typed bytea[] (oid 1001) and boolean[] (1000).
const bytea = (v: unknown): unknown => {
  if (!Array.isArray(v) || v.length === 0) return v
  if (Buffer.isBuffer(v[0]) || v[0] === null) return sql.array(v as any, 1001)
  return typeof v[0] === 'boolean' ? sql.array(v as any, 1000) : v
}
const sql = postgres(url, { max: 10, prepare: true, types: { bigint: postgres.BigInt }, transform: { undefined: null } })
for (let round = 0; round < 2; round++) {
  await suite(round, 'pg', async (text, values) => (await pool.query({ name: `drv${text.length}`, text, values, rowMode: 'array', types: bigint } as any)).rows)
  await suite(round, 'postgres.js', async (text, values) => await sql.unsafe(text, values.map(bytea) as any[], { prepare: true }).values() as unknown as unknown[][])
}
await pool.end()
await sql.end()

await setup.clear()
await setup.disconnect()
await cluster?.destroy()
