/**
 * The libraries of the PostgreSQL bench, each driven through its public API only: relayq's
 * PgStorage, graphile-worker 0.18 and pg-boss 12 (each with its defaults and with the batching a
 * user turns on for throughput), and @platformatic/job-queue's PgStorage. A producer runs in the
 * bench's process, a consumer in a child (consumer.ts).
 *
 * Request/response: relayq has enqueueAndWait. graphile-worker and pg-boss have none, so their rpc
 * is a job plus a completion wait built from their APIs, the way a user would: the handler sends
 * a NOTIFY with the job's id once done (its return value stored as the result is what relayq
 * does in the same round trip) and the producer waits for it on a LISTEN connection.
 */
import pg from 'pg'

export type LibId = 'relayq' | 'relayq-pf' | 'relayq-base' | 'relayq-base-pf' | 'graphile' | 'graphile-lq' | 'pgboss' | 'pgboss-batch' | 'platformatic'

export interface LibInfo {
  readonly id: LibId
  readonly name: string
  /** The settings that differ from the library's defaults, for the table's legend. */
  readonly settings: string
  /** Most jobs of a run (a library too slow for the full count is capped; rows are labelled). */
  readonly maxJobs?: number
  /** Most enqueue calls in flight (@platformatic/job-queue hangs with 10 or more). */
  readonly maxInflight?: number
}

/** Jobs the `relayq-pf` consumer claims ahead of its 50 slots: 450, a local queue of 500 like graphile-worker's. */
const PREFETCH = Number(process.env.RELAYQ_PREFETCH ?? 450)

export const LIBS: readonly LibInfo[] = [
  { id: 'relayq', name: 'relayq PgStorage', settings: 'defaults (pool 10)' },
  // Another build of relayq (RELAYQ_BASELINE: the path of its dist/index.js), for A/B in one run: `--only relayq,relayq-base`.
  { id: 'relayq-base', name: 'relayq baseline', settings: 'defaults (pool 10), the build at RELAYQ_BASELINE' },
  // The batching a user turns on for throughput, like graphile-worker's localQueue: jobs claimed ahead of free slots.
  { id: 'relayq-pf', name: 'relayq PgStorage, prefetch', settings: `prefetch ${PREFETCH} (RELAYQ_PREFETCH)` },
  { id: 'relayq-base-pf', name: 'relayq baseline, prefetch', settings: `prefetch ${PREFETCH}, the build at RELAYQ_BASELINE` },
  { id: 'graphile', name: 'graphile-worker', settings: 'defaults' },
  { id: 'graphile-lq', name: 'graphile-worker, localQueue 500', settings: 'localQueue.size 500, completeJobBatchDelay 0' },
  // pg-boss 12.38 waits its polling interval after every fetch (30 s with NOTIFY on) unless a fetch
  // comes back full of a batch larger than 1: with batchSize 1, 50 workers take 50 jobs per interval.
  { id: 'pgboss', name: 'pg-boss', settings: 'batchSize 1 (default), localConcurrency 50, polling intervals 0.5 s (their minimum), useListenNotify', maxJobs: 2000 },
  { id: 'pgboss-batch', name: 'pg-boss, batch 500', settings: 'batchSize 500, burstWhenBatchFull, useListenNotify' },
  { id: 'platformatic', name: '@platformatic/job-queue', settings: 'defaults, 5 enqueues in flight (it deadlocks at 10)', maxJobs: 5000, maxInflight: 5 }
]

export interface Producer {
  enqueue (id: string, n: number): Promise<unknown>
  /** Stores many jobs in as few calls as the library allows; undefined when it has no bulk call. */
  bulk?: (items: ReadonlyArray<{ id: string, n: number }>) => Promise<unknown>
  /** Enqueues and resolves with the handler's result. */
  rpc (id: string, n: number): Promise<unknown>
  close (): Promise<void>
}

export interface ConsumerHandle {
  close (): Promise<void>
}

const TASK = 'bench'

/** NOTIFY channel of a queue's rpc completions (graphile-worker, pg-boss). */
const rpcChannel = (queue: string): string => `rpc_${queue}`.replace(/[^a-z0-9_]/gi, '_')

/** A LISTEN connection resolving waiters by job id (payload `id:result`). */
async function completions (url: string, queue: string): Promise<{ wait: (id: string) => Promise<unknown>, close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const waiters = new Map<string, (v: unknown) => void>()
  client.on('notification', msg => {
    const payload = msg.payload ?? ''
    const at = payload.indexOf(':')
    const resolve = waiters.get(payload.slice(0, at))
    if (resolve !== undefined) {
      waiters.delete(payload.slice(0, at))
      resolve(Number(payload.slice(at + 1)))
    }
  })
  await client.query(`LISTEN "${rpcChannel(queue)}"`)
  return {
    wait: id => new Promise(resolve => waiters.set(id, resolve)),
    close: () => client.end()
  }
}

/** relayq, or the baseline build for `relayq-base`. */
async function relayq (lib: LibId): Promise<typeof import('relayq')> {
  if (lib === 'relayq' || lib === 'relayq-pf') return await import('relayq')
  const path = process.env.RELAYQ_BASELINE
  if (path === undefined) throw new Error('relayq-base needs RELAYQ_BASELINE (the path of a relayq build\'s dist/index.js)')
  return await import(path) as typeof import('relayq')
}

export async function openProducer (lib: LibId, url: string, queue: string): Promise<Producer> {
  switch (lib) {
    case 'relayq':
    case 'relayq-pf':
    case 'relayq-base':
    case 'relayq-base-pf': {
      const { Producer, PgStorage } = await relayq(lib)
      const producer = new Producer<number, number>({ storage: new PgStorage({ connectionString: url }), name: queue })
      return {
        enqueue: (id, n) => producer.enqueue(id, n),
        bulk: items => producer.enqueueMany(items.map(i => ({ id: i.id, payload: i.n }))),
        rpc: (id, n) => producer.enqueueAndWait(id, n, { timeout: 60_000 }),
        close: () => producer.stop()
      }
    }
    case 'graphile':
    case 'graphile-lq': {
      const { makeWorkerUtils } = await import('graphile-worker')
      const utils = await makeWorkerUtils({ connectionString: url })
      await utils.migrate()
      const done = await completions(url, queue)
      return {
        enqueue: (id, n) => utils.addJob(TASK, { id, n, queue }, { queueName: undefined }),
        bulk: items => utils.addJobs(items.map(i => ({ identifier: TASK, payload: { id: i.id, n: i.n, queue } }))),
        rpc: async (id, n) => {
          const result = done.wait(id)
          await utils.addJob(TASK, { id, n, queue, reply: true })
          return await result
        },
        close: async () => { await done.close(); await utils.release() }
      }
    }
    case 'pgboss':
    case 'pgboss-batch': {
      const { PgBoss } = await import('pg-boss') as any
      const boss = new PgBoss({ connectionString: url, useListenNotify: true, supervise: false, schedule: false })
      boss.on('error', (e: Error) => { if (process.env.BENCH_DEBUG !== undefined) console.error('pg-boss error', e.message) })
      await boss.start()
      await boss.createQueue(queue, { notify: true })
      const done = await completions(url, queue)
      return {
        enqueue: (id, n) => boss.send(queue, { id, n }),
        bulk: items => boss.insert(queue, items.map(i => ({ data: { id: i.id, n: i.n } }))),
        rpc: async (id, n) => {
          const result = done.wait(id)
          await boss.send(queue, { id, n, reply: true })
          return await result
        },
        close: async () => { await done.close(); await boss.stop({ graceful: false, wait: true }) }
      }
    }
    case 'platformatic': {
      const { Queue, PgStorage } = await import('@platformatic/job-queue') as any
      const q = new Queue({ storage: new PgStorage({ connectionString: url, tablePrefix: 'jq_' }), name: queue })
      await q.start()
      return {
        enqueue: (id, n) => q.enqueue(id, n),
        rpc: (id, n) => q.enqueueAndWait(id, n, { timeout: 60_000 }),
        close: () => q.stop()
      }
    }
  }
}

/** Starts a consumer (concurrency 50) calling `handled` after each job; `echo` jobs answer their `n`. */
export async function startConsumer (lib: LibId, url: string, queue: string, concurrency: number, handled: () => void): Promise<ConsumerHandle> {
  switch (lib) {
    case 'relayq':
    case 'relayq-pf':
    case 'relayq-base':
    case 'relayq-base-pf': {
      const { Consumer, PgStorage } = await relayq(lib)
      const prefetch = lib.endsWith('-pf') ? { prefetch: PREFETCH } : {}
      const consumer = new Consumer<number, number>({ storage: new PgStorage({ connectionString: url }), name: queue, concurrency, ...prefetch })
      consumer.execute(async job => {
        handled()
        return job.payload
      })
      await consumer.start()
      return { close: () => consumer.stop() }
    }
    case 'graphile':
    case 'graphile-lq': {
      const { run, Logger } = await import('graphile-worker')
      const runner = await run({
        logger: new Logger(() => () => {}),
        connectionString: url,
        concurrency,
        noHandleSignals: true,
        pollInterval: 2000,
        taskList: {
          [TASK]: async (payload: any, helpers: any) => {
            if (payload.reply === true) await helpers.query('SELECT pg_notify($1, $2)', [rpcChannel(payload.queue), `${payload.id}:${payload.n}`])
            handled()
          }
        },
        ...(lib === 'graphile-lq' && { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } } })
      } as any)
      return { close: () => runner.stop() }
    }
    case 'pgboss':
    case 'pgboss-batch': {
      const { PgBoss } = await import('pg-boss') as any
      const boss = new PgBoss({ connectionString: url, useListenNotify: true, supervise: false, schedule: false })
      boss.on('error', () => {})
      await boss.start()
      const db = boss.getDb()
      const handle = async (job: any): Promise<unknown> => {
        if (job.data.reply === true) await db.executeSql('SELECT pg_notify($1, $2)', [rpcChannel(queue), `${job.data.id}:${job.data.n}`])
        handled()
        return job.data.n
      }
      const options = lib === 'pgboss'
        ? { localConcurrency: concurrency, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 }
        : { batchSize: 500, burstWhenBatchFull: true }
      await boss.work(queue, options, async (jobs: any[]) => await Promise.all(jobs.map(handle)))
      return { close: () => boss.stop({ graceful: false, wait: true }) }
    }
    case 'platformatic': {
      const { Queue, PgStorage } = await import('@platformatic/job-queue') as any
      const q = new Queue({ storage: new PgStorage({ connectionString: url, tablePrefix: 'jq_' }), name: queue, concurrency })
      q.execute(async (job: any) => {
        handled()
        return job.payload
      })
      await q.start()
      return { close: () => q.stop() }
    }
  }
}
