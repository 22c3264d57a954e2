// rpc through Queue with N calls in flight (1: sequential), consumer (concurrency 50) in its own
// process; prints calls/s, p50 µs and CPU per call of producer, consumer and the Redis at <url>.
// usage: [LIB=dist/index.js] [CLUSTER=h:p,...] node bench/experiments/rpc-inflight.mjs <redis url for CPU> <calls> <in flight>
import { fork } from 'node:child_process'
import { Redis } from 'iovalkey'
const { Queue, RedisStorage } = await import(process.env.LIB ?? new URL('../../dist/index.js', import.meta.url).href)
const url = process.argv[2]; const calls = +process.argv[3]; const conc = +process.argv[4]
const child = fork(new URL('./rpc-inflight-consumer.mjs', import.meta.url).pathname, [url], { execArgv: process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.PROF] : [] })
await new Promise(resolve => child.once('message', resolve))
const admin = new Redis(url)
const rcpu = async () => { const s = await admin.info('cpu'); const g = k => +s.match(new RegExp(k + ':([0-9.]+)'))[1]; return (g('used_cpu_sys') + g('used_cpu_user')) * 1e6 }
const storage = process.env.CLUSTER ? new RedisStorage({ cluster: process.env.CLUSTER.split(',') }) : new RedisStorage({ url })
const q = new Queue({ storage, name: 'p' })
await q.start()
const s = 'x'.repeat(64); let id = 0; const lat = []
async function run (n, rec) { let next = 0; await Promise.all(Array.from({ length: conc }, async () => { while (next < n) { next++; const k = id++; const t = process.hrtime.bigint(); await q.enqueueAndWait('j' + k + '-' + Date.now(), { n: k, s }, { timeout: 30000 }); if (rec) lat.push(Number(process.hrtime.bigint() - t) / 1000) } })) }
await run(Math.min(5000, calls), false)
child.send('cpu')
const c1 = process.cpuUsage(); const r1 = await rcpu(); const t0 = process.hrtime.bigint()
await run(calls, true)
const ns = Number(process.hrtime.bigint() - t0); const cu = process.cpuUsage(c1); const r2 = await rcpu()
const cc = await new Promise(resolve => { child.once('message', resolve); child.send('cpu') })
lat.sort((a, b) => a - b)
console.log(JSON.stringify({ rate: Math.round(calls / ns * 1e9), p50: +lat[lat.length >> 1].toFixed(0), prodCpuUs: +((cu.user + cu.system) / calls).toFixed(1), consCpuUs: +(cc / calls).toFixed(1), redisCpuUs: +((r2 - r1) / calls).toFixed(1) }))
child.send('stop'); await new Promise(resolve => child.once('exit', resolve))
await q.stop(); admin.disconnect(); process.exit(0)
