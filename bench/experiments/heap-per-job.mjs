// Heap held per job by a MemoryStorage: N jobs enqueued (heap after GC: per queued job), then drained by a
// Consumer (heap after GC: per completed job, past history but in its result cache).
// usage: node --expose-gc bench/experiments/heap-per-job.mjs <absolute dist dir of a relayq build> <jobs>
const [dist, jobsS] = process.argv.slice(2); const jobs = Number(jobsS)
const m = await import(dist + '/index.js')
const storage = new m.MemoryStorage(); const name = 'q'
const producer = new m.Producer({ storage, name }); await producer.start()
const s = 'x'.repeat(64)
global.gc(); const h0 = process.memoryUsage().heapUsed
for (let i = 0; i < jobs; i += 1000) await producer.enqueueMany(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ id: `j${i + k}`, payload: { n: i + k, s } })))
global.gc(); const h1 = process.memoryUsage().heapUsed
const consumer = new m.Consumer({ storage, name, concurrency: 50 })
let done = 0; let finish; const all = new Promise(resolve => { finish = resolve })
consumer.on('completed', () => { if (++done === jobs) finish() })
consumer.execute(async () => undefined); await consumer.start(); await all; await consumer.stop()
global.gc(); const h2 = process.memoryUsage().heapUsed
console.log(JSON.stringify({ dist: dist.split('/').pop(), queuedBytesPerJob: Math.round((h1 - h0) / jobs), completedBytesPerJob: Math.round((h2 - h0) / jobs) }))
process.exit(0)
