/**
 * Backends for the bench. A scenario only sees the {@link Backend} interface: a storage factory for
 * the producer side, a consumer runner, and `close`. Adding a backend means adding a case to
 * {@link loadStorageFactory}; the scenarios do not change.
 *
 * - `memory`: one MemoryStorage shared by producer and consumer, all in this process (the only way
 *   it can work: its state lives in this process's memory).
 * - `redis`, `file`: the consumer runs in its own process (bench/consumer-child.ts, forked and driven
 *   over IPC), as a real deployment would, so producer and consumer CPU are measured apart.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
// The built package (dist/, as users run it), not the TypeScript sources: tsx's transpiled output
// names every closure it creates (esbuild keepNames), a cost the published code does not have.
// tsx would follow tsconfig.json's `paths` to src/: `npm run bench` points it at bench/tsconfig.json,
// which has none (forked children inherit that), and this check refuses to measure anything else.
import { Consumer, FileStorage, MemoryStorage, PgStorage, Queue, RedisStorage, type Storage } from 'relayq'

if (!import.meta.resolve('relayq').endsWith('/dist/index.js')) {
  throw new Error(`The bench measures the built package, but 'relayq' resolves to ${import.meta.resolve('relayq')}: run it with npm run bench (or TSX_TSCONFIG_PATH=bench/tsconfig.json)`)
}
import { deleteKeys } from './peers/redis-keys.ts'
import { CompletionClock } from './completion-clock.ts'
import { monoUs, TraceLog, tracePgQueries, traceRedisCommands, traceStorage, type TraceEvent } from './trace.ts'

export const BACKEND_NAMES = ['memory', 'redis', 'file'] as const
export type BackendName = typeof BACKEND_NAMES[number]
/** The backends of this file: `postgres` too, for bench/postgres/run.ts's hops scenario (its other scenarios are its own). */
export type StoreName = BackendName | 'postgres'

/** Plain data: all a child process needs to open the same storage. */
export interface BackendConfig {
  readonly name: StoreName
  /** redis, postgres: server (postgres: database) URL. */
  readonly url?: string
  /** redis: Redis Cluster seed nodes (`host:port`); instead of `url`. */
  readonly cluster?: readonly string[]
  /** redis: key prefix of this backend's keys, all deleted by `close`. */
  readonly keyPrefix?: string
  /** file: directory of the queue files. */
  readonly basePath?: string
}

/**
 * What the consumer's handler does: `noop` returns nothing, `echo` returns `payload.n`, `stamp`
 * returns `[payload.n, µs]` with the monotonic clock ({@link monoUs}) read when the handler started.
 */
export type HandlerKind = 'noop' | 'echo' | 'stamp'

/** How relayq is driven: `Producer` + `Consumer`, or `Queue` on both sides (as @platformatic/job-queue users write it). */
export type Api = 'producer' | 'queue'

export interface ConsumerOptions {
  readonly queue: string
  readonly concurrency: number
  readonly handler: HandlerKind
  /** `reached` resolves once this many jobs completed; 0: never (run until `stop`). */
  readonly target: number
  /** relayq only: the API the consumer uses. @default 'producer' */
  readonly api?: Api
  /**
   * Forked consumers: a process started for this consumer alone and ended at `stop` (a cold
   * consumer), instead of one reused from earlier drains (warm).
   */
  readonly fresh?: boolean
  /** Stamp the consumer's storage calls and Redis commands (bench/trace.ts); returned with the stats at `stop`. */
  readonly trace?: boolean
}

export interface ConsumerStats {
  /** Jobs completed since the consumer started. */
  readonly completed: number
  /** Ms from the consumer's start to its last counted completion. */
  readonly elapsedMs: number
  /** CPU time (user + system) of the consumer's process over that span, in µs. */
  readonly cpuUs: number
  /** `in-process`: the CPU figure also includes whatever else this process did meanwhile. */
  readonly where: 'in-process' | 'child'
  /** With `trace`: the consumer's stamps. */
  readonly trace?: TraceEvent[]
}

export interface RunningConsumer {
  /** Resolves when `target` jobs completed, with the stats at that moment. */
  readonly reached: Promise<ConsumerStats>
  /** Stops the consumer (and its process); resolves with the stats at stop. */
  stop (): Promise<ConsumerStats>
}

export interface Backend {
  readonly name: StoreName
  readonly config: BackendConfig
  readonly consumerWhere: 'in-process' | 'child'
  /** A storage for a producer of this process (connect/disconnect are done by the Producer). */
  createStorage (): Storage
  /** Starts a consumer on `options.queue`; resolves once it is started and claiming. */
  startConsumer (options: ConsumerOptions): Promise<RunningConsumer>
  /** Releases what the backend holds (temp dirs, child processes still running). */
  close (): Promise<void>
}

/** Returns a function creating a fresh storage client for `config` (used here and in the consumer child). */
export async function loadStorageFactory (config: BackendConfig): Promise<() => Storage> {
  switch (config.name) {
    case 'memory':
      return () => new MemoryStorage()
    case 'redis': {
      const keyPrefix = config.keyPrefix
      const cluster = config.cluster
      if (cluster !== undefined) return () => new RedisStorage({ cluster: [...cluster], keyPrefix })
      const url = config.url ?? 'redis://127.0.0.1:6379'
      return () => new RedisStorage({ url, keyPrefix })
    }
    case 'file': {
      const basePath = config.basePath
      if (basePath === undefined) throw new Error('The file backend needs a basePath')
      return () => new FileStorage({ basePath })
    }
    case 'postgres': {
      const connectionString = config.url
      if (connectionString === undefined) throw new Error('The postgres backend needs a url')
      return () => new PgStorage({ connectionString })
    }
  }
}

/** What a handler of `kind` returns for a job whose payload has `n` (every library's bench handler). */
export function handlerResult (kind: HandlerKind, n: number): unknown {
  return kind === 'echo' ? n : kind === 'stamp' ? [n, monoUs()] : undefined
}

const HANDLERS: Record<HandlerKind, (job: { payload: { n: number } }) => Promise<unknown>> = {
  noop: async () => {},
  echo: async job => job.payload.n,
  stamp: async job => handlerResult('stamp', job.payload.n)
}

/**
 * Runs a Consumer on `storage` in this process. Used for the memory backend and, inside
 * bench/consumer-child.ts, for the others. Timing starts right before `consumer.start()`.
 */
export async function runConsumer (given: Storage, options: ConsumerOptions, where: ConsumerStats['where']): Promise<RunningConsumer> {
  const log = options.trace === true ? new TraceLog() : undefined
  const storage = log === undefined ? given : traceStorage(given, log)
  const untrace = log === undefined
    ? () => {}
    : given instanceof RedisStorage ? traceRedisCommands(log) : given instanceof PgStorage ? tracePgQueries(log) : () => {}
  // Connect first (reference-counted) so the timed start does not include opening connections.
  await storage.connect()
  const config = { storage, name: options.queue, concurrency: options.concurrency }
  // A Queue also runs its reaper (leader election, stalled-job scans), as in a user's worker.
  const consumer = options.api === 'queue' ? new Queue<{ n: number }, unknown>(config) : new Consumer<{ n: number }, unknown>(config)
  consumer.execute(HANDLERS[options.handler])
  const clock = new CompletionClock(options.target, where)
  consumer.on('completed', () => clock.completed())
  consumer.on('failed', (id, err) => clock.failed(`${id}: ${err.message}`))
  consumer.on('error', err => { console.error(`consumer error: ${err.message}`) })
  clock.start()
  await consumer.start()
  return {
    reached: clock.reached,
    async stop () {
      const s = clock.stop()
      await consumer.stop()
      await storage.disconnect()
      untrace()
      return log === undefined ? s : { ...s, trace: log.events }
    }
  }
}

/** Messages between the bench and bench/consumer-child.ts. */
export type ToChild<TConfig = BackendConfig> =
  | { type: 'init', config: TConfig }
  | { type: 'start', options: ConsumerOptions }
  | { type: 'stop' }
  | { type: 'exit' }
export type FromChild =
  | { type: 'ready' }
  | { type: 'started' }
  | { type: 'reached', stats: ConsumerStats }
  | { type: 'stopped', stats: ConsumerStats }
  | { type: 'error', message: string }

/**
 * Forks a consumer child (bench/consumer-child.ts by default; bench/peers/consumer-child.ts for the
 * peer queues), sends it `config` and starts a consumer in it.
 */
export async function forkConsumer<TConfig = BackendConfig> (
  config: TConfig, options: ConsumerOptions, children: Set<ChildProcess>, script = new URL('./consumer-child.ts', import.meta.url)
): Promise<RunningConsumer> {
  const path = fileURLToPath(script)
  let child = options.fresh === true ? undefined : idle.get(path)?.pop()
  if (child === undefined) {
    child = fork(path, [], {
      execPath: process.execPath,
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CHILD_PROF] : [])],
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
  }
  const forked = child
  children.add(forked)
  const onExit = (): void => { children.delete(forked) }
  forked.once('exit', onExit)
  const waitFor = <T extends FromChild['type']>(type: T): Promise<Extract<FromChild, { type: T }>> => new Promise((resolve, reject) => {
    const onMessage = (msg: FromChild): void => {
      if (msg.type === type) {
        cleanup()
        resolve(msg as Extract<FromChild, { type: T }>)
      } else if (msg.type === 'error') {
        cleanup()
        reject(new Error(`consumer child: ${msg.message}`))
      }
    }
    const onExit = (code: number | null): void => {
      cleanup()
      reject(new Error(`consumer child exited (code ${code}) while waiting for '${type}'`))
    }
    const cleanup = (): void => {
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
  const send = (msg: ToChild<TConfig>): void => { child.send(msg) }
  const ready = waitFor('ready')
  send({ type: 'init', config })
  await ready
  const started = waitFor('started')
  const reachedMsg = options.target > 0 ? waitFor('reached') : new Promise<never>(() => {})
  reachedMsg.catch(() => {}) // reported through `reached` to whoever awaits it
  send({ type: 'start', options })
  await started
  return {
    reached: reachedMsg.then(m => m.stats),
    async stop () {
      const stopped = waitFor('stopped')
      send({ type: 'stop' })
      const { stats } = await stopped
      if (options.fresh === true) {
        // A cold consumer's process serves one drain only.
        await endChild(child)
        return stats
      }
      // Back to the pool: the next drain of this script runs in the same, warm process.
      children.delete(child)
      child.off('exit', onExit)
      const pool = idle.get(path) ?? []
      pool.push(child)
      idle.set(path, pool)
      return stats
    }
  }
}

/** Consumer children between drains, per script. */
const idle = new Map<string, ChildProcess[]>()

/** Asks a consumer child to exit and waits until it did. */
async function endChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.send({ type: 'exit' })
  await exited
}

/**
 * Ends the pooled consumer children. The bench calls it after each library's warm suite (the
 * next library starts with processes of its own) and once it is done.
 */
export async function closeConsumerPool (): Promise<void> {
  const all = [...idle.values()].flat()
  idle.clear()
  await Promise.all(all.map(endChild))
}

export interface BackendOptions {
  /** redis: server URL (@default REDIS_URL or redis://127.0.0.1:6379); postgres: the database URL. */
  url?: string
  /** redis: Redis Cluster seed nodes (`host:port`); replaces `url`. */
  cluster?: readonly string[]
  /** file: directory for the queue files. @default a new temp dir, removed by close() */
  path?: string
}

/** Creates a backend by name. */
export async function createBackend (name: StoreName, options: BackendOptions = {}): Promise<Backend> {
  if (name === 'memory') {
    // One shared storage: producer and consumer must see the same memory.
    const storage = new MemoryStorage()
    return {
      name,
      config: { name },
      consumerWhere: 'in-process',
      createStorage: () => storage,
      startConsumer: opts => runConsumer(storage, opts, 'in-process'),
      close: async () => {}
    }
  }
  let tempDir: string | undefined
  let config: BackendConfig
  if (name === 'postgres') {
    // The database is the caller's (bench/postgres/run.ts creates and drops it).
    config = { name, url: options.url }
  } else if (name === 'redis') {
    // A prefix of its own, so `close` can remove every key the run left (terminal records live an hour).
    const keyPrefix = `relayq-bench-${randomUUID()}`
    config = options.cluster === undefined
      ? { name, url: options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix }
      : { name, cluster: options.cluster, keyPrefix }
  } else {
    if (options.path === undefined) tempDir = await mkdtemp(join(tmpdir(), 'relayq-bench-'))
    config = { name, basePath: options.path ?? tempDir }
  }
  let factory: () => Storage
  try {
    factory = await loadStorageFactory(config)
  } catch (err) {
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true })
    throw err
  }
  const children = new Set<ChildProcess>()
  return {
    name,
    config,
    consumerWhere: 'child',
    createStorage: factory,
    startConsumer: opts => forkConsumer(config, opts, children),
    async close () {
      for (const child of children) child.kill()
      if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true })
      if (config.cluster !== undefined) await clearStorage(factory())
      else if (config.url !== undefined && config.keyPrefix !== undefined) await deleteKeys(config.url, `{${config.keyPrefix}:`)
    }
  }
}

/** Deletes every key of a storage's prefix (on every master of a cluster) through the storage itself. */
async function clearStorage (storage: Storage): Promise<void> {
  if (!(storage instanceof RedisStorage)) return
  await storage.connect()
  try {
    await storage.clear()
  } finally {
    await storage.disconnect()
  }
}
