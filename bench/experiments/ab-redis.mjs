// A/B of the Redis hot path, server side: N jobs enqueued (enqueueMany, chunks of 1,000: the
// storage sends batches of 250), then drained by a Consumer (concurrency 50, no-op handler), then
// C sequential enqueueAndWait calls (Producer and Consumer on their own storages). For each phase:
// Redis CPU µs per job (INFO cpu, user + sys), EVALSHA server µs per job and calls per job, and
// the commands per job (INFO commandstats deltas; scripts' own commands included). The server
// must be a throwaway one: it is flushed first.
// usage: node bench/experiments/ab-redis.mjs <absolute dist dir of a relayq build> <redis url> <jobs> <calls>
import { Redis } from 'iovalkey'
const [dist, url, jobsS, callsS] = process.argv.slice(2)
const jobs = Number(jobsS); const calls = Number(callsS)
const m = await import(dist + '/index.js')
const admin = new Redis(url)
await admin.flushall()

async function stats () {
  const info = await admin.info('commandstats')
  const commands = new Map()
  for (const x of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands.set(x[1], { calls: Number(x[2]), usec: Number(x[3]) })
  const cpu = await admin.info('cpu')
  const sec = name => Number(cpu.match(new RegExp(`^${name}:([\\d.]+)`, 'm'))[1])
  return { commands, cpu: (sec('used_cpu_user') + sec('used_cpu_sys')) * 1e6 }
}

function delta (a, b, n) {
  const per = {}
  for (const [name, v] of b.commands) {
    const c = v.calls - (a.commands.get(name)?.calls ?? 0)
    if (c > 0 && name !== 'info') per[name] = +(c / n).toFixed(3)
  }
  const ev = b.commands.get('evalsha') ?? { calls: 0, usec: 0 }
  const ev0 = a.commands.get('evalsha') ?? { calls: 0, usec: 0 }
  return { cpu: +((b.cpu - a.cpu) / n).toFixed(2), evalshaUs: +((ev.usec - ev0.usec) / n).toFixed(2), evalshaPerJob: +((ev.calls - ev0.calls) / n).toFixed(3), per }
}

const s = 'x'.repeat(64)
const out = { dist: dist.split('/').slice(-2).join('/') }

// Phase 1 and 2: enqueue, then drain.
if (jobs > 0) {
  const ps = new m.RedisStorage({ url }); const cs = new m.RedisStorage({ url })
  const producer = new m.Producer({ storage: ps, name: 'drain' })
  await producer.start()
  const a = await stats()
  for (let i = 0; i < jobs; i += 1000) await producer.enqueueMany(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ id: `j${i + k}`, payload: { n: i + k, s } })))
  const b = await stats()
  out.enqueue = delta(a, b, jobs)
  const consumer = new m.Consumer({ storage: cs, name: 'drain', concurrency: 50 })
  let done = 0; let finish
  const all = new Promise(resolve => { finish = resolve })
  consumer.on('completed', () => { if (++done === jobs) finish() })
  consumer.execute(async () => undefined)
  const c = await stats()
  await consumer.start()
  await all
  const d = await stats()
  out.drain = delta(c, d, jobs)
  await consumer.stop(); await producer.stop()
}

// Phase 3: sequential enqueueAndWait.
if (calls > 0) {
  const slow = process.env.SLOWLOG === '1'
  const ps = new m.RedisStorage({ url }); const cs = new m.RedisStorage({ url })
  const producer = new m.Producer({ storage: ps, name: 'rpc' })
  const consumer = new m.Consumer({ storage: cs, name: 'rpc', concurrency: 50 })
  consumer.execute(async job => job.payload.n)
  await producer.start(); await consumer.start()
  for (let i = 0; i < 100; i++) await producer.enqueueAndWait(`w${i}`, { n: i, s }, { timeout: 10000 })
  if (slow) { await admin.config('SET', 'slowlog-log-slower-than', '0'); await admin.config('SET', 'slowlog-max-len', String(20 * calls)); await admin.slowlog('RESET') }
  const a = await stats()
  for (let i = 0; i < calls; i++) await producer.enqueueAndWait(`r${i}`, { n: i, s }, { timeout: 10000 })
  const b = await stats()
  out.rpc = delta(a, b, calls)
  // Server µs per EVALSHA, by script (told apart by their number of keys), from SLOWLOG.
  const log = slow ? await admin.slowlog('GET', 20 * calls) : []
  if (slow) await admin.config('SET', 'slowlog-log-slower-than', '10000')
  const by = {}
  for (const [, , us, args] of log) {
    if (String(args[0]).toLowerCase() !== 'evalsha') continue
    const k = 'keys' + args[2]
    by[k] = by[k] ?? []
    by[k].push(us)
  }
  out.rpcScripts = Object.fromEntries(Object.entries(by).map(([k, v]) => { v.sort((x, y) => x - y); return [k, { n: v.length, mean: +(v.reduce((x, y) => x + y, 0) / v.length).toFixed(1), p50: v[v.length >> 1] }] }))
  await consumer.stop(); await producer.stop()
}
console.log(JSON.stringify(out))
admin.disconnect()
process.exit(0)
