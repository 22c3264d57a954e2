/**
 * @platformatic/job-queue as a `--compare` peer, through its public API only: a `Queue` without a
 * handler as producer (`enqueue`, `enqueueAndWait` for request/response), a `Queue` with a handler
 * (concurrency 50) as consumer, on its RedisStorage, MemoryStorage or FileStorage. It has no bulk
 * enqueue. One storage per queue (a key prefix, a directory) so runs never share state.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type * as Platformatic from '@platformatic/job-queue'
import { handlerResult } from '../backends.ts'
import { CompletionClock } from '../completion-clock.ts'
import { importPackage, packageVersion } from './load.ts'
import { deleteKeys } from './redis-keys.ts'
import type { Peer, PeerEnv, PeerLibrary, PeerSession } from './types.ts'

type Lib = typeof Platformatic
type Storage = Platformatic.Storage

/** The package declares node >= 22.19; on older Node its enqueueAndWait needs `Promise.withResolvers`. */
const NEEDS_SHIM = Number(process.versions.node.split('.')[0]) < 22

/** Installs a spec-equivalent `Promise.withResolvers` where this Node lacks it (Node 20). */
function shimWithResolvers (): void {
  const P = Promise as unknown as { withResolvers?: unknown }
  if (typeof P.withResolvers === 'function') return
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let res!: (value: T | PromiseLike<T>) => void
      let rej!: (reason?: unknown) => void
      const promise = new Promise<T>((resolve, reject) => { res = resolve; rej = reject })
      return { promise, resolve: res, reject: rej }
    }
  })
}

function session (lib: Lib, env: PeerEnv): PeerSession {
  // memory: producer and consumer run in this process and must share the storage of a queue.
  const memory = new Map<string, Storage>()
  const storageFor = (queue: string): Storage => {
    switch (env.store) {
      case 'redis':
        return new lib.RedisStorage({ url: env.url ?? 'redis://127.0.0.1:6379', keyPrefix: `${env.prefix}:${queue}:` })
      case 'file':
        if (env.basePath === undefined) throw new Error('@platformatic/job-queue FileStorage needs a basePath')
        return new lib.FileStorage({ basePath: join(env.basePath, queue) })
      case 'memory': {
        let storage = memory.get(queue)
        if (storage === undefined) memory.set(queue, storage = new lib.MemoryStorage())
        return storage
      }
    }
  }
  return {
    async openProducer (name) {
      const queue = new lib.Queue<{ n: number, s: string }, unknown>({ storage: storageFor(name) })
      await queue.start() // no handler: a producer only
      return {
        async enqueue (id, payload) {
          const res = await queue.enqueue(id, payload)
          if (res.status !== 'queued') throw new Error(`@platformatic/job-queue: job ${id} was ${res.status}, not queued`)
        },
        call: (id, payload, timeout) => queue.enqueueAndWait(id, payload, { timeout }),
        // A shared memory storage is disconnected by its consumer (Queue.stop disconnects its storage).
        close: env.store === 'memory' ? async () => {} : () => queue.stop()
      }
    },
    async startConsumer (options, where) {
      const storage = storageFor(options.queue)
      const queue = new lib.Queue<{ n: number, s: string }, unknown>({ storage, concurrency: options.concurrency })
      const kind = options.handler
      // Its JSON serde cannot store `undefined`: the no-op handler returns null.
      queue.execute(async (job: Platformatic.Job<{ n: number, s: string }>) => handlerResult(kind, job.payload.n) ?? null)
      const clock = new CompletionClock(options.target, where)
      queue.on('completed', () => clock.completed())
      queue.on('failed', (id, err) => clock.failed(`@platformatic/job-queue job ${id}: ${err.message}`))
      queue.on('error', err => { console.error(`@platformatic/job-queue consumer error: ${err.message}`) })
      await storage.connect() // connections first: Queue.start() connects again (idempotent), then consumes
      clock.start()
      await queue.start()
      return {
        reached: clock.reached,
        async stop () {
          const stats = clock.stop()
          await queue.stop()
          return stats
        }
      }
    },
    async close () {
      for (const storage of memory.values()) await storage.disconnect()
      memory.clear()
    }
  }
}

/** @platformatic/job-queue on the same store as relayq: RedisStorage, MemoryStorage or FileStorage. */
export const platformatic: Peer = {
  id: 'platformatic',
  name: '@platformatic/job-queue',
  packageName: '@platformatic/job-queue',
  supports: () => true,
  // Its FileStorage slows down badly with the number of queued jobs.
  limits: store => store === 'file' ? { jobs: 2_000, rpc: { warmup: 500, sequential: 500, concurrent: 1_000 } } : undefined,
  settings: store => [
    `${{ redis: 'RedisStorage({ url, keyPrefix })', memory: 'MemoryStorage, consumer in-process like relayq\'s', file: 'FileStorage({ basePath })' }[store]}, one storage per queue; Queue defaults (maxRetries 3, resultTTL 1 h, like relayq's)`,
    'consumer: Queue with execute(handler), concurrency 50; producer: Queue without handler; caller ids (deduplicated, like relayq)',
    'no bulk enqueue API (bulk column n/a); rpc: enqueueAndWait; the no-op handler returns null (its JSON serde cannot store undefined)',
    ...(NEEDS_SHIM ? [`it declares node >= 22.19: on this Node ${process.versions.node} the bench installs a Promise.withResolvers shim (used by its enqueueAndWait)`] : [])
  ],
  async load (): Promise<PeerLibrary> {
    if (NEEDS_SHIM) shimWithResolvers()
    const lib = await importPackage<Lib>('@platformatic/job-queue')
    return {
      version: packageVersion('@platformatic/job-queue'),
      open: env => session(lib, env),
      async cleanup (env) {
        if (env.store === 'redis') return `${await deleteKeys(env.url ?? 'redis://127.0.0.1:6379', `${env.prefix}:`)} keys deleted`
        if (env.store === 'file' && env.basePath !== undefined) {
          await rm(env.basePath, { recursive: true, force: true })
          return `${env.basePath} removed`
        }
        return 'nothing stored outside this process'
      }
    }
  }
}
