// A/B of the processing hot path: N jobs enqueued in chunks of 1,000, then drained by a Consumer
// (concurrency 50, no-op handler) in the same process; prints jobs/s and process CPU µs per job
// of the drain, round 1 (cold) and the following rounds (warm), each on a new queue.
// usage: node bench/experiments/ab-drain.mjs <absolute dist dir of a relayq build> memory|file <jobs> <rounds>
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const [dist, backend, jobsS, roundsS] = process.argv.slice(2)
const jobs = Number(jobsS); const rounds = Number(roundsS ?? 3)
const m = await import(dist + '/index.js')
const dir = backend === 'file' ? mkdtempSync(join(tmpdir(), 'pm-tp-')) : undefined
const storage = backend === 'file' ? new m.FileStorage({ basePath: dir }) : new m.MemoryStorage()
const s = 'x'.repeat(64)
const out = []
for (let r = 0; r < rounds; r++) {
  const name = 'q' + r
  const producer = new m.Producer({ storage, name })
  await producer.start()
  for (let i = 0; i < jobs; i += 1000) await producer.enqueueMany(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ id: `j${i + k}`, payload: { n: i + k, s } })))
  const consumer = new m.Consumer({ storage, name, concurrency: 50 })
  let done = 0; let finish
  const all = new Promise(resolve => { finish = resolve })
  consumer.on('completed', () => { if (++done === jobs) finish() })
  consumer.execute(async () => undefined)
  const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage()
  await consumer.start()
  await all
  const ns = Number(process.hrtime.bigint() - t0); const cu = process.cpuUsage(c0)
  out.push({ rate: Math.round(jobs / ns * 1e9), cpu: +((cu.user + cu.system) / jobs).toFixed(2) })
  await consumer.stop(); await producer.stop()
}
// median over rounds (round 0 included as cold)
const sorted = [...out].sort((a, b) => a.cpu - b.cpu)
console.log(JSON.stringify({ dist: dist.split('/').slice(-2).join('/'), backend, cold: out[0], rounds: out, medCpu: sorted[Math.floor(sorted.length / 2)].cpu }))
if (dir) rmSync(dir, { recursive: true, force: true })
process.exit(0)
