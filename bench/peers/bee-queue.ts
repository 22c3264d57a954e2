/**
 * bee-queue as a `--compare` peer, through its public API only: `createJob(...).save()` and
 * `saveAll` to enqueue, a worker queue (`isWorker: true`, `process(50, handler)`) to consume, and
 * request/response as its docs describe it: a producer queue with `getEvents: true` whose saved
 * worker publishes each job's `succeeded` event with the handler's result.
 */
import type BeeQueue from 'bee-queue'
import { handlerResult } from '../backends.ts'
import { CompletionClock } from '../completion-clock.ts'
import { importPackage, packageVersion } from './load.ts'
import { deleteKeys } from './redis-keys.ts'
import type { Peer, PeerEnv, PeerLibrary, PeerSession } from './types.ts'

type BeeQueueClass = typeof BeeQueue
type Payload = { n: number, s: string }

/**
 * The outcome of each job, from the producer queue's `job succeeded` / `job failed` events (its
 * pub/sub events, matched by job id). Not `job.on('succeeded')`: bee-queue only routes an event to
 * the job object once `save()` has resolved, and with the worker in another process the event
 * sometimes arrives first, and that call then never resolves (seen here: 1 call in a few hundred).
 * Outcomes that arrive before their `save()` resolved wait in `early`.
 */
function resultsByJobId (queue: BeeQueue<Payload>): { wait: (jobId: string, timeoutMs: number) => Promise<unknown> } {
  const waiting = new Map<string, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  const early = new Map<string, { ok: boolean, value: unknown }>()
  const settle = (jobId: string, ok: boolean, value: unknown): void => {
    const w = waiting.get(jobId)
    if (w === undefined) {
      early.set(jobId, { ok, value })
      return
    }
    waiting.delete(jobId)
    clearTimeout(w.timer)
    if (ok) w.resolve(value)
    else w.reject(value instanceof Error ? value : new Error(String(value)))
  }
  queue.on('job succeeded', (jobId, result) => settle(String(jobId), true, result))
  queue.on('job failed', (jobId, err) => settle(String(jobId), false, err))
  return {
    wait: (jobId, timeoutMs) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(jobId)
        reject(new Error(`bee-queue: no result for job ${jobId} after ${timeoutMs} ms`))
      }, timeoutMs)
      waiting.set(jobId, { resolve, reject, timer })
      const done = early.get(jobId)
      if (done !== undefined) {
        early.delete(jobId)
        settle(jobId, done.ok, done.value)
      }
    })
  }
}

function session (Bee: BeeQueueClass, env: PeerEnv): PeerSession {
  const redis = { url: env.url ?? 'redis://127.0.0.1:6379' }
  const common = { prefix: env.prefix, redis, activateDelayedJobs: false }
  return {
    async openProducer (name, mode) {
      const rpc = mode === 'rpc'
      // Events are only needed (and only subscribed to) by rpc producers.
      const queue = new Bee<Payload>(name, { ...common, isWorker: false, getEvents: rpc, storeJobs: false, sendEvents: false })
      const results = rpc ? resultsByJobId(queue) : undefined
      // Without a listener, a connection error would end the bench: the calls in flight fail instead.
      queue.on('error', err => { console.error(`bee-queue producer error: ${err.message}`) })
      await queue.ready()
      return {
        async enqueue (_id, payload) {
          const job = await queue.createJob(payload).save()
          if (job.id == null) throw new Error('bee-queue: save returned a job without id')
        },
        async enqueueMany (jobs) {
          const errors = await queue.saveAll(jobs.map(j => queue.createJob(j.payload)))
          if (errors.size > 0) throw new Error(`bee-queue: saveAll failed for ${errors.size} jobs: ${[...errors.values()][0].message}`)
        },
        async call (_id, payload, timeoutMs) {
          if (results === undefined) throw new Error('bee-queue: call on a producer opened for enqueue')
          const job = await queue.createJob(payload).save()
          return await results.wait(job.id, timeoutMs)
        },
        close: () => queue.close()
      }
    },
    async startConsumer (options, where) {
      const rpc = options.handler !== 'noop'
      // sendEvents publishes each job's outcome: only rpc waits for it.
      const queue = new Bee<Payload>(options.queue, {
        ...common, isWorker: true, getEvents: false, storeJobs: false, sendEvents: rpc, removeOnSuccess: true
      })
      const clock = new CompletionClock(options.target, where)
      queue.on('succeeded', () => clock.completed())
      queue.on('failed', (job, err) => clock.failed(`bee-queue job ${job.id}: ${err.message}`))
      queue.on('error', err => { console.error(`bee-queue worker error: ${err.message}`) })
      await queue.ready()
      clock.start()
      const kind = options.handler
      queue.process(options.concurrency, async job => handlerResult(kind, job.data.n))
      return {
        reached: clock.reached,
        async stop () {
          const stats = clock.stop()
          await queue.close()
          return stats
        }
      }
    },
    close: async () => {}
  }
}

/** bee-queue (Redis only). */
export const beeQueue: Peer = {
  id: 'bee-queue',
  name: 'bee-queue',
  packageName: 'bee-queue',
  supports: store => store === 'redis',
  limits: () => undefined,
  settings: () => [
    'node-redis v3 clients from { url }; worker isWorker: true, process(50, handler), removeOnSuccess: true, activateDelayedJobs: false',
    'sendEvents only on the rpc worker, getEvents only on the rpc producer (both off for throughput: nobody listens); storeJobs: false',
    'job ids generated by bee-queue (the caller ids are not passed: no deduplication); bulk: saveAll',
    'rpc: createJob().save(), then the producer queue\'s "job succeeded" event for that id (job.on(\'succeeded\') misses results that arrive before save() resolves)'
  ],
  async load (): Promise<PeerLibrary> {
    const mod = await importPackage<{ default: BeeQueueClass }>('bee-queue')
    return {
      version: packageVersion('bee-queue'),
      open: env => session(mod.default, env),
      cleanup: async env => `${await deleteKeys(env.url ?? 'redis://127.0.0.1:6379', `${env.prefix}:`)} keys deleted`
    }
  }
}
