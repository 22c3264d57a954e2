// The consumer process of rpc-inflight.mjs.
const { Queue, RedisStorage } = await import(process.env.LIB ?? new URL('../../dist/index.js', import.meta.url).href)
const storage = process.env.CLUSTER ? new RedisStorage({ cluster: process.env.CLUSTER.split(',') }) : new RedisStorage({ url: process.argv[2] })
const q = new Queue({ storage, concurrency: 50, name: 'p' })
q.execute(async job => job.payload.n)
await q.start()
process.send?.('ready')
let c0
process.on('message', async m => { if (m === 'stop') { await q.stop(); process.exit(0) } if (m === 'cpu') { if (c0 === undefined) c0 = process.cpuUsage(); else { const c = process.cpuUsage(c0); process.send(c.user + c.system) } } })
