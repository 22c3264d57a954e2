// A/B of QueueState alone: enqueue N jobs (batches of 1,000), then claim 25 / settle 25 until
// drained; prints CPU ns per job of each phase (median over rounds, and round 1 = cold).
// usage: node bench/experiments/ab-queue-state.mjs <absolute dist dir of a relayq build> <jobs> <rounds>
const [dist, jobsS, roundsS] = process.argv.slice(2)
const { QueueState } = await import(dist + (dist.endsWith('src') ? '/storage/queue-state.ts' : '/storage/queue-state.js'))
const jobs = Number(jobsS); const rounds = Number(roundsS)
const payload = Buffer.from(JSON.stringify({ n: 1, s: 'x'.repeat(64) }))
const result = Buffer.from('null')
const st = new QueueState(1)
let now = Date.now(); let idn = 0
const res = []
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) * 1000 }
for (let r = 0; r < rounds; r++) {
  const batches = []
  for (let i = 0; i < jobs; i += 1000) {
    const batch = []
    for (let k = 0; k < 1000; k++) batch.push({ id: 'j' + (idn++), payload, maxAttempts: 3, resultTTL: 3600000, delay: 0, runTimeout: 0, notify: false })
    batches.push(batch)
  }
  const t0 = cpu()
  for (const batch of batches) st.enqueue(now, 1, batch)
  const t1 = cpu()
  let claimed = st.claim(now, 'w', 25, 30000)
  while (claimed.length > 0) {
    now++
    const s = claimed.map(c => ({ type: 'complete', id: c.id, attempt: c.attempts, result, ttl: 3600000 }))
    st.settle(now, 'w', s)
    claimed = st.claim(now, 'w', 25, 30000)
  }
  const t2 = cpu()
  res.push([(t1 - t0) / jobs, (t2 - t1) / jobs])
}
const med = a => a.sort((x, y) => x - y)[a.length >> 1]
console.log(dist.split('/').slice(-2).join('/'), 'enqueue ns/job', med(res.map(r => r[0])).toFixed(0), 'claim+settle ns/job', med(res.map(r => r[1])).toFixed(0), 'first', res[0].map(x => x.toFixed(0)).join('/'))
