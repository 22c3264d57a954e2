const [base, branch] = [process.argv[2], process.argv[3]]
const mods = { base: await import(base), branch: await import(branch) }
const N = 100_000
function run (QueueState: any): [number, number] {
  const s = new QueueState(1)
  let now = 1_700_000_000_000
  let enq = 0; let proc = 0
  for (let round = 0; round < 3; round++) {
    const jobs = []
    for (let i = 0; i < N; i++) jobs.push({ id: `r${round}-${i}`, payload: Buffer.from('{"n":1,"s":"hello world"}'), maxAttempts: 3, resultTTL: 3_600_000, delay: 0 })
    let t = process.cpuUsage()
    for (let i = 0; i < N; i += 50) s.enqueue(now, 1, jobs.slice(i, i + 50))
    let c = process.cpuUsage(t); enq += c.user + c.system
    t = process.cpuUsage()
    for (;;) {
      const claimed = s.claim(now, 'w', 25, 30_000)
      if (claimed.length === 0) break
      s.settle(now, 'w', claimed.map((j: any) => ({ type: 'complete', id: j.id, attempt: j.attempts, result: Buffer.from('1'), ttl: 3_600_000 })))
      now += 0.01
    }
    c = process.cpuUsage(t); proc += c.user + c.system
    now += 1
  }
  return [enq / (3 * N), proc / (3 * N)]
}
const res: Record<string, Array<[number, number]>> = { base: [], branch: [] }
for (let round = 0; round < 9; round++) for (const k of ['base', 'branch'] as const) res[k].push(run(mods[k].QueueState))
const med = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)].toFixed(3)
for (const k of ['base', 'branch']) console.log(k, 'enqueue µs/job', med(res[k].slice(2).map(r => r[0])), 'process µs/job', med(res[k].slice(2).map(r => r[1])))
