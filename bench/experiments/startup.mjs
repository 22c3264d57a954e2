// Start-up of a fresh process: import of relayq, then RedisStorage connect(); prints both (ms) and
// the process CPU so far. usage: node bench/experiments/startup.mjs <dist/index.js> [redis url]
const t0 = performance.now()
const { RedisStorage } = await import(process.argv[2])
const t1 = performance.now()
const s = new RedisStorage({ url: process.argv[3] ?? 'redis://127.0.0.1:6379' })
await s.connect()
const t2 = performance.now()
console.log(JSON.stringify({ importMs: +(t1 - t0).toFixed(1), connectMs: +(t2 - t1).toFixed(1), cpuMs: +((process.cpuUsage().user + process.cpuUsage().system) / 1000).toFixed(0) }))
await s.disconnect()
