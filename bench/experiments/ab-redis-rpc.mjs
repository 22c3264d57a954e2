// A/B of sequential enqueueAndWait on Redis, client side: a Producer in this process, a Consumer
// (concurrency 50) in a child process, each on its own RedisStorage; after a warm-up, prints per
// call the wall time, the producer's and the consumer's process CPU (process.cpuUsage) and the
// server's CPU (INFO used_cpu_user + used_cpu_sys delta). One queue name per run, not flushed:
// point it at a throwaway server. Interleave runs of several builds and quote paired ratios.
// usage: node bench/experiments/ab-redis-rpc.mjs <absolute dist dir of a relayq build> <redis url> <warm-up calls> <calls>
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'iovalkey'
const [dist, url, warmupS, callsS, role, queueName] = process.argv.slice(2)
const m = await import(dist + '/index.js')

if (role === 'consumer') {
  const consumer = new m.Consumer({ storage: new m.RedisStorage({ url }), name: queueName, concurrency: 50 })
  consumer.execute(async job => job.payload.n)
  await consumer.start()
  let c0
  process.on('message', async msg => {
    if (msg === 'start') { c0 = process.cpuUsage(); process.send('started') }
    if (msg === 'stop') {
      const cu = process.cpuUsage(c0)
      process.send({ cpu: cu.user + cu.system })
      await consumer.stop()
      process.exit(0)
    }
  })
  process.send('ready')
} else {
  const warmup = Number(warmupS); const calls = Number(callsS)
  const name = `rpc-${process.pid}-${Date.now()}`
  const child = fork(new URL(import.meta.url).pathname, [dist, url, warmupS, callsS, 'consumer', name])
  await once(child, 'message')
  const admin = new Redis(url)
  const serverCpu = async () => {
    const cpu = await admin.info('cpu')
    const sec = key => Number(cpu.match(new RegExp(`^${key}:([\\d.]+)`, 'm'))[1])
    return (sec('used_cpu_user') + sec('used_cpu_sys')) * 1e6
  }
  const producer = new m.Producer({ storage: new m.RedisStorage({ url }), name })
  await producer.start()
  const s = 'x'.repeat(64)
  let id = 0
  const run = async n => { for (let i = 0; i < n; i++) { const k = id++; await producer.enqueueAndWait('j' + k, { n: k, s }, { timeout: 10000 }) } }
  await run(warmup)
  child.send('start'); await once(child, 'message')
  const r0 = await serverCpu()
  const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage()
  await run(calls)
  const ns = Number(process.hrtime.bigint() - t0); const cu = process.cpuUsage(c0)
  const r1 = await serverCpu()
  child.send('stop')
  const [{ cpu: consumerCpu }] = await once(child, 'message')
  const per = x => +(x / calls).toFixed(2)
  console.log(JSON.stringify({ dist, usPerCall: per(ns / 1000), producerCpuUs: per(cu.user + cu.system), consumerCpuUs: per(consumerCpu), serverCpuUs: per(r1 - r0) }))
  await producer.stop(); admin.disconnect()
  process.exit(0)
}
