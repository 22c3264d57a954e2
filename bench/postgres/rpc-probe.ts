/**
 * Sequential rpc (enqueueAndWait) latency on PgStorage, A/B in one process, the sides taking turns
 * in blocks of 25 calls so that the machine's noise hits both alike: `npx tsx
 * bench/postgres/rpc-probe.ts [url | cluster] [baseline dist/index.js] [calls per side, 600]`.
 * `cluster` (the default) starts a PostgreSQL cluster of its own (fsync and synchronous_commit on)
 * and also reports its CPU time per call (every server process, from /proc: 10 ms ticks, summed
 * over the blocks). Producer and consumer (concurrency 50) of each side share the process.
 * Prints each side's p50 and p90, CPU per call (this process, the server), and the parts of this
 * build's calls (enqueue, wake-up to the handler, handler to stored settlement, settlement to answer).
 */
import { startCluster } from '../../test/fixtures/pg-server.ts'
import { pgCpu } from './pg-cpu.ts'

const cluster = (process.argv[2] ?? 'cluster') === 'cluster' ? await startCluster(['fsync=on', 'synchronous_commit=on', 'autovacuum=off']) : undefined
const url = cluster?.url ?? process.argv[2]
const baseline = process.argv[3] === '' ? undefined : process.argv[3]
const CALLS = Number(process.argv[4] ?? 600)
const BLOCK = 25
type Relayq = typeof import('../../src/index.ts')

interface Side { name: string, call: (i: number) => Promise<number>, stop: () => Promise<void>, parts: Record<string, number[]> }

async function side (name: string, mod: Relayq, prefix: string): Promise<Side> {
  const { Consumer, PgStorage, Producer } = mod
  const queue = `probe_${process.pid}`
  const marks = new Map<string, number>()
  // A schema of its own, dropped at the end: the tables and functions are this build's.
  const schema = `${prefix}${process.pid}`
  const ps = new PgStorage({ connectionString: url, schema })
  const cs = new PgStorage({ connectionString: url, schema })
  for (const [s, label] of [[ps, 'p'], [cs, 'c']] as const) {
    for (const m of ['enqueue', 'settle'] as const) {
      const orig = (s as any)[m].bind(s)
      ;(s as any)[m] = async (...args: unknown[]) => {
        marks.set(`${label}.${m}.start`, performance.now())
        const r = await orig(...args)
        marks.set(`${label}.${m}.end`, performance.now())
        return r
      }
    }
  }
  const producer = new Producer<number, number>({ storage: ps, name: queue })
  const consumer = new Consumer<number, number>({ storage: cs, name: queue, concurrency: 50 })
  let handlerAt = 0
  consumer.execute(async (job: any) => { handlerAt = performance.now(); return job.payload })
  await consumer.start()
  const parts: Record<string, number[]> = { beforeEnqueue: [], enqueue: [], toHandler: [], handlerToSettled: [], settledToAnswer: [] }
  return {
    name,
    parts,
    call: async i => {
      const t0 = performance.now()
      await producer.enqueueAndWait(`${name}-${i}`, i, { timeout: 10_000 })
      const t1 = performance.now()
      parts.enqueue.push(marks.get('p.enqueue.end')! - marks.get('p.enqueue.start')!)
      parts.beforeEnqueue.push(marks.get('p.enqueue.start')! - t0)
      parts.toHandler.push(handlerAt - marks.get('p.enqueue.end')!)
      parts.handlerToSettled.push(marks.get('c.settle.end')! - handlerAt)
      parts.settledToAnswer.push(t1 - marks.get('c.settle.end')!)
      return t1 - t0
    },
    stop: async () => {
      await consumer.stop()
      await producer.stop()
      const { default: pg } = await import('pg')
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(`DROP SCHEMA ${schema} CASCADE`)
      await c.end()
    }
  }
}

// This build as users run it (dist/: npm run build first), like the baseline.
const sides = [await side('this', await import('../../dist/index.js' as string) as Relayq, 'probe_')]
if (baseline !== undefined) sides.push(await side('baseline', await import(baseline) as Relayq, 'probeb_'))
const lat = new Map<string, number[]>(sides.map(s => [s.name, []]))
const cpu = new Map<string, { node: number, server: number }>(sides.map(s => [s.name, { node: 0, server: 0 }]))
// Warm-up: 30 calls per side, not counted.
for (let i = 0; i < 30; i++) for (const s of sides) await s.call(-1 - i)
for (let i = 0; i < CALLS; i += BLOCK) {
  for (const s of sides) {
    const server0 = cluster === undefined ? 0 : pgCpu(cluster)
    const node0 = process.cpuUsage()
    for (let k = i; k < i + BLOCK; k++) lat.get(s.name)!.push(await s.call(k))
    const node = process.cpuUsage(node0)
    const c = cpu.get(s.name)!
    c.node += node.user + node.system
    if (cluster !== undefined) c.server += pgCpu(cluster) - server0
  }
}
const pct = (a: number[], p: number): string => [...a].sort((x, y) => x - y)[Math.floor(a.length * p)].toFixed(2)
for (const s of sides) {
  const c = cpu.get(s.name)!
  const n = lat.get(s.name)!.length
  console.log(`${s.name.padEnd(9)} p50 ${pct(lat.get(s.name)!, 0.5)} ms, p90 ${pct(lat.get(s.name)!, 0.9)} ms; CPU per call: this process ${(c.node / n).toFixed(0)} µs` +
    (cluster === undefined ? '' : `, PostgreSQL ${(c.server / n).toFixed(0)} µs`))
}
if (sides.length === 2) {
  console.log(`ratio of p50s (this / baseline): ${(Number(pct(lat.get('this')!, 0.5)) / Number(pct(lat.get('baseline')!, 0.5))).toFixed(2)}`)
  if (cluster !== undefined) console.log(`ratio of PostgreSQL CPU per call (this / baseline): ${(cpu.get('this')!.server / cpu.get('baseline')!.server).toFixed(2)}`)
}
for (const [k, v] of Object.entries(sides[0].parts)) console.log(`  this: ${k.padEnd(17)} p50 ${pct(v.slice(30), 0.5)} ms`)
for (const s of sides) await s.stop()
await cluster?.destroy()
process.exit(0)
