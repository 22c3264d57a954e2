// One phase of the Redis hot path, for per-phase server measurements (callgrind dumps or INFO
// deltas taken by the caller between phases): `flush` empties the server, `enq1` N sequential
// one-job enqueues, `enqmany` N jobs by enqueueMany (batches of 250 on the wire), `drain` the
// queue `d` by a Consumer (concurrency 50), `rpc` N sequential enqueueAndWait (after 50 warm-up).
// usage: node bench/experiments/redis-phase.mjs <absolute dist dir> <redis url> <phase> <N>
import { Redis } from 'iovalkey'
const [dist, url, phase, nS] = process.argv.slice(2)
const n = Number(nS)
const m = await import(dist + '/index.js')
const s = 'x'.repeat(64)
if (phase === 'flush') {
  const c = new Redis(url); await c.flushall(); c.disconnect()
} else if (phase === 'enq1' || phase === 'enqmany') {
  const storage = new m.RedisStorage({ url })
  const producer = new m.Producer({ storage, name: phase === 'enq1' ? 'e' : 'd' })
  await producer.start()
  if (phase === 'enq1') for (let i = 0; i < n; i++) await producer.enqueue(`e${i}`, { n: i, s })
  else for (let i = 0; i < n; i += 1000) await producer.enqueueMany(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ id: `j${i + k}`, payload: { n: i + k, s } })))
  await producer.stop()
} else if (phase === 'drain') {
  const storage = new m.RedisStorage({ url })
  const consumer = new m.Consumer({ storage, name: 'd', concurrency: 50 })
  let done = 0; let finish
  const all = new Promise(resolve => { finish = resolve })
  consumer.on('completed', () => { if (++done === n) finish() })
  consumer.execute(async () => undefined)
  await consumer.start(); await all; await consumer.stop()
} else if (phase === 'rpc') {
  const ps = new m.RedisStorage({ url }); const cs = new m.RedisStorage({ url })
  const producer = new m.Producer({ storage: ps, name: 'r' })
  const consumer = new m.Consumer({ storage: cs, name: 'r', concurrency: 50 })
  consumer.execute(async job => job.payload.n)
  await producer.start(); await consumer.start()
  for (let i = 0; i < n; i++) await producer.enqueueAndWait(`r${i}`, { n: i, s }, { timeout: 60000 })
  await consumer.stop(); await producer.stop()
}
process.exit(0)
