/**
 * Sequential rpc (enqueueAndWait) latency on PgStorage, A/B in one process, calls interleaved so
 * that the machine's noise hits both alike: `npx tsx bench/postgres/rpc-probe.ts [url]
 * [baseline dist/index.js]`. Producer and consumer (concurrency 50) of each side share the process.
 * Prints each side's p50 and p90, and the parts of this build's calls (enqueue, wake-up to the
 * handler, handler to stored settlement, settlement to answer).
 */
const url = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/test'
const baseline = process.argv[3]
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

const sides = [await side('this', await import('../../src/index.ts'), 'probe_')]
if (baseline !== undefined) sides.push(await side('baseline', await import(baseline) as Relayq, 'probeb_'))
const lat = new Map<string, number[]>(sides.map(s => [s.name, []]))
for (let i = 0; i < 330; i++) {
  for (const s of sides) {
    const ms = await s.call(i)
    if (i >= 30) lat.get(s.name)!.push(ms)
  }
}
const pct = (a: number[], p: number): string => [...a].sort((x, y) => x - y)[Math.floor(a.length * p)].toFixed(2)
for (const s of sides) console.log(`${s.name.padEnd(9)} p50 ${pct(lat.get(s.name)!, 0.5)} ms, p90 ${pct(lat.get(s.name)!, 0.9)} ms`)
if (sides.length === 2) console.log(`ratio of p50s (this / baseline): ${(Number(pct(lat.get('this')!, 0.5)) / Number(pct(lat.get('baseline')!, 0.5))).toFixed(2)}`)
for (const [k, v] of Object.entries(sides[0].parts)) console.log(`  this: ${k.padEnd(17)} p50 ${pct(v.slice(30), 0.5)} ms`)
for (const s of sides) await s.stop()
process.exit(0)
