// A/B of Queue.enqueue with N calls in flight on a MemoryStorage (no consumer running, as the
// bench's enqueue phase), one fresh process per measurement; prints jobs/s and process CPU per job.
// usage: node bench/experiments/ab-enqueue.mjs <absolute dist dir of a relayq build | platformatic> <warm-up jobs> <jobs> [in flight = 50]
import { loadLib } from './load-lib.mjs'
const [lib, warmupS, jobsS, concS] = process.argv.slice(2)
const warmup = Number(warmupS); const jobs = Number(jobsS); const conc = Number(concS ?? 50)
const { Q, S } = await loadLib(lib)
const s = 'x'.repeat(64)
let id = 0
async function run (producer, n) {
  let next = 0
  await Promise.all(Array.from({ length: conc }, async () => { while (next < n) { next++; const k = id++; await producer.enqueue('j' + k, { i: k, s }) } }))
}
if (warmup > 0) {
  const storage = new S()
  const producer = new Q({ storage, name: 'warm' })
  await producer.start()
  await run(producer, warmup)
  await producer.stop()
}
const storage = new S()
const producer = new Q({ storage })
await producer.start()
const t0 = process.hrtime.bigint(); const c1 = process.cpuUsage()
await run(producer, jobs)
const ns = Number(process.hrtime.bigint() - t0); const cu = process.cpuUsage(c1)
console.log(JSON.stringify({ lib: lib.includes('platformatic') ? 'peer' : lib, rate: Math.round(jobs / ns * 1e9), cpuUsPerJob: +((cu.user + cu.system) / jobs).toFixed(2) }))
await producer.stop()
process.exit(0)
