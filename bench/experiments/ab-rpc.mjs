// A/B of enqueueAndWait through two Queues sharing one MemoryStorage (a producer without handler,
// a consumer with concurrency 50), one fresh process per measurement; prints calls/s and the
// process CPU (all threads) per call. Interleave runs of several builds and quote ratios.
// usage: node bench/experiments/ab-rpc.mjs <absolute dist dir of a relayq build | platformatic> <warm-up calls> <calls> [in flight = 1]
import { loadLib } from './load-lib.mjs'
const [lib, warmupS, callsS, concS] = process.argv.slice(2)
const warmup = Number(warmupS); const calls = Number(callsS); const conc = Number(concS ?? 1)
const { Q, S } = await loadLib(lib)
const storage = new S()
const producer = new Q({ storage })
const consumer = new Q({ storage, concurrency: 50 })
consumer.execute(async job => job.payload.n)
await consumer.start()
await producer.start()
const s = 'x'.repeat(64)
let id = 0
async function run (n) {
  if (conc === 1) { for (let i = 0; i < n; i++) { const k = id++; await producer.enqueueAndWait('j' + k, { n: k, s }, { timeout: 10000 }) } return }
  let next = 0
  await Promise.all(Array.from({ length: conc }, async () => { while (next < n) { next++; const k = id++; await producer.enqueueAndWait('j' + k, { n: k, s }, { timeout: 10000 }) } }))
}
if (warmup > 0) await run(warmup)
const t0 = process.hrtime.bigint(); const c1 = process.cpuUsage()
await run(calls)
const ns = Number(process.hrtime.bigint() - t0); const cu = process.cpuUsage(c1)
console.log(JSON.stringify({ lib: lib.includes('platformatic') ? 'peer' : lib, rate: Math.round(calls / ns * 1e9), cpuUsPerCall: +((cu.user + cu.system) / calls).toFixed(2) }))
await producer.stop(); await consumer.stop()
process.exit(0)
