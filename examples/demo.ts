/**
 * relayq in one process, on MemoryStorage (the embedded default: no server needed).
 * Run it with `npm start`. Every step prints what happens; the queue stops and the process exits.
 */
import { Admin, MemoryStorage, Queue } from '../src/index.ts'

interface Payload { a: number, b: number }

// A queue is a producer (enqueue, enqueueAndWait, getStatus...) and a consumer (runs the handler).
const storage = new MemoryStorage()
const queue = new Queue<Payload, number>({
  storage,
  concurrency: 4, // up to 4 jobs run at once
  maxRetries: 3, // total attempts per job, the first one included
  backoff: { type: 'fixed', delay: 200 } // a failed attempt waits 200 ms before the next one
})

const t0 = Date.now()
const log = (msg: string): void => console.log(`[${String(Date.now() - t0).padStart(4)} ms] ${msg}`)

// Events tell what the consumer did with each job.
queue.on('completed', (id, result) => log(`completed ${id} -> ${result}`))
queue.on('failing', (id, err, attempt) => log(`failing   ${id}: attempt ${attempt} threw "${err.message}", retry after backoff`))
queue.on('failed', (id, err) => log(`failed    ${id}: ${err.message}`))

// The handler: called once per attempt. `job.attempts` is 1 on the first run.
let upstreamDown = false
queue.execute(async job => {
  if (job.id === 'flaky' && job.attempts === 1) throw new Error('upstream not ready') // first attempt only
  if (upstreamDown && job.id.startsWith('report')) throw new Error(`upstream down for ${job.id}`)
  return job.payload.a + job.payload.b
})
await queue.start()

/**
 * Resolves when the consumer reports job `id` completed. The caller of `enqueueAndWait` and the
 * `completed` event learn of the result at the same moment, in no set order: waiting for both
 * keeps this demo's output in order.
 */
const completion = (id: string): Promise<void> => new Promise(resolve => {
  const onCompleted = (done: string): void => {
    if (done !== id) return
    queue.off('completed', onCompleted)
    resolve()
  }
  queue.on('completed', onCompleted)
})

// 1. RPC over the queue: enqueueAndWait resolves with the handler's result.
log('1. RPC calls with enqueueAndWait')
for (let i = 1; i <= 3; i++) {
  const [sum] = await Promise.all([queue.enqueueAndWait(`rpc-${i}`, { a: i, b: 10 }, { timeout: 5000 }), completion(`rpc-${i}`)])
  log(`   rpc-${i}: ${i} + 10 = ${sum}`)
}

// 2. Fire-and-forget: enqueue returns once the job is stored; wait for the `completed` events.
log('2. Fire-and-forget batch with enqueue')
const batch = ['job-a', 'job-b', 'job-c', 'job-d', 'job-e']
const allDone = new Promise<void>(resolve => {
  const pending = new Set(batch)
  const onCompleted = (id: string): void => {
    pending.delete(id)
    if (pending.size === 0) {
      queue.off('completed', onCompleted)
      resolve()
    }
  }
  queue.on('completed', onCompleted)
})
log(`   enqueueing ${batch.join(', ')}`)
const statuses = await Promise.all(batch.map((id, i) => queue.enqueue(id, { a: i, b: i })))
log(`   enqueue answered: ${statuses.map(s => s.status).join(', ')}`)
await allDone
log('   batch done')

// 3. A job that fails once and is retried after its backoff delay.
log('3. A job that fails once, then succeeds on retry')
const [flaky] = await Promise.all([queue.enqueueAndWait('flaky', { a: 40, b: 2 }, { timeout: 5000 }), completion('flaky')])
log(`   flaky answered ${flaky}`)

// 4. The id is the dedup key: a finished id answers from the stored result, the handler does not run.
log('4. Duplicate id of a finished job')
const dup = await queue.enqueue('rpc-1', { a: 999, b: 999 })
log(`   enqueue rpc-1 again: ${JSON.stringify(dup)}`)

// 5. Status of a job: state, attempts, result.
const status = await queue.getStatus('flaky')
log(`5. getStatus(flaky): state=${status?.state}, attempts=${status?.attempts}, result=${status?.result}`)

// 6. Operators: Admin finds the jobs that failed, tells why, and runs them again.
log('6. A failed job found and retried through Admin')
upstreamDown = true
const failed = new Promise<void>(resolve => queue.once('failed', () => resolve()))
await queue.enqueue('report-7', { a: 3, b: 4 }, { maxAttempts: 1 })
await failed
const admin = new Admin<Payload, number>({ storage })
const { jobs } = await admin.listJobs('default', { state: 'failed' })
log(`   failed jobs: ${jobs.map(j => `${j.id} (${j.error?.message})`).join(', ')}`)
const [group] = await admin.failureGroups('default')
log(`   failure group ${group.key}: "${group.message}" x${group.count}`)
const detail = await admin.getJob('default', 'report-7')
log(`   history of report-7: ${detail?.history.map(a => `attempt ${a.attempt} ${a.outcome} on ${a.worker.slice(0, 8)}`).join('; ')}`)
upstreamDown = false // the fix is deployed
const retried = completion('report-7')
const { count } = await admin.retry('default', { state: 'failed', errorGroup: group.key })
log(`   retried ${count} job(s) of that group`)
await retried
log(`   report-7 is now ${(await queue.getStatus('report-7'))?.state}, result ${await queue.getResult('report-7')}`)
await admin.close()

// stop() waits for running jobs, then releases the storage: nothing keeps the process alive.
await queue.stop()
log('queue stopped')
