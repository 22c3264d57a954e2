import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, rmSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import type {
  AbortOutcome, AdminAction, AdminStorage, ApplyOptions, ApplyOutcome, BlockingClaimOptions, CancelOutcome, ClaimOptions,
  ClaimedJob, EnqueueOutcome, ErrorGroup, FailureGroup, JobDetail, JobPage, JobQuery, JobRecord, JobTarget, LeaseReport,
  NewJob, Notice, QueueOverview, QueueSummary, RecoveryOutcome, Retention, SettleResult, Settlement, StateCounts,
  UpdateTTLOutcome, WorkerEntry, WorkerInfo
} from './types.ts'
import { InvalidArgumentError, QueueError, StorageError } from '../errors.ts'
import { checkLogger } from '../logger.ts'
import { checkClock, checkId, checkStorageOptions, isWellFormed, optInt } from '../options.ts'
import type { Logger } from '../types.ts'
import { acquireLock, releaseLock } from './file/lock.ts'
import { QueueLog } from './file/log.ts'
import type { Op } from './file/ops.ts'
import { createQueueDir, lockDir, openBase, queueDir, queueNames } from './file/paths.ts'
import { compareIds, existingOutcome, isTerminal } from './job-record.ts'
import { failureGroups, getJob, listJobs, overview, summary } from './queue-admin.ts'
import { QueueState } from './queue-state.ts'
import { QueueDriver } from './queue-driver.ts'

/** Options of {@link FileStorage}. */
export interface FileStorageOptions {
  /** Directory of the queues; created (mode 0o700) if missing. Every process sharing the queues uses the same one. */
  basePath: string
  /** Source of the current time in epoch ms (leases, delays, TTLs, lock expiry). @default Date.now */
  clock?: () => number
  /**
   * Make every operation survive a power loss or kernel crash: its log frame is flushed with
   * fdatasync (one flush covers all the operations waiting for it) before its promise resolves, and
   * new segments and snapshots are fsynced with their directory. Without it, everything survives the
   * crash of any process (kill -9) but the last few seconds may be lost to a power loss.
   * @default false
   */
  fsync?: boolean
  /**
   * How often each open queue checks its log for frames that fs.watch did not report, in ms. fs.watch
   * only hints; this check alone is enough to see every notice and wake every blocked claim.
   * @default 100
   */
  pollInterval?: number
  /** Use fs.watch to hear other processes' writes at once. Off: they are seen within `pollInterval`. @default true */
  watch?: boolean
  /**
   * Log segment size in bytes after which the segment is sealed, the queue's state snapshotted and
   * older segments deleted (at least twice the last snapshot, so a large state is not rewritten for
   * a small log). This is what removes expired records from the disk.
   * @default 16777216 (16 MiB)
   */
  segmentSize?: number
  /** A pino-style logger: when fs.watch fails and the poll alone carries on, at `warn`. @default silent */
  logger?: Logger
}

const FILE_OPTIONS = ['basePath', 'clock', 'fsync', 'pollInterval', 'watch', 'segmentSize', 'logger'] as const

/** One open queue of this instance. */
interface Space {
  /** Replaced by `clear()`. */
  log: QueueLog
  /** Notices, parked claims and the due timer of the queue. */
  readonly driver: QueueDriver
  watcher: FSWatcher | undefined
  /** Set by disconnect: late timer or watcher callbacks leave it alone. */
  closed: boolean
}

const DEFAULT_SEGMENT = 16 * 1024 * 1024
const NOTHING: RecoveryOutcome = Object.freeze({ requeued: [], failed: [] })
/** A queue that does not exist, for reads that must not create it. */
const ABSENT = new QueueState(0)

/**
 * A persistent queue in a directory, shared by any number of processes on one host: no server.
 *
 * Each queue is an append-only log of checksummed frames (one per operation) that every process
 * replays into the same state, so claims, dedup and leases are decided identically everywhere by
 * the order of the frames in the file. Appends are O(1) whatever the queue depth; notices (results
 * for `enqueueAndWait`, cancel requests) reach every process by reading the log, with fs.watch as a
 * wake-up hint and a poll as the guarantee. See the README section "FileStorage" for the layout
 * and the durability guarantees.
 *
 * @example
 * const queue = new Queue({ storage: new FileStorage({ basePath: '/var/lib/myapp/queue' }) })
 */
export class FileStorage implements AdminStorage {
  readonly #basePath: string
  readonly #clock: () => number
  readonly #fsync: boolean
  readonly #pollInterval: number
  readonly #watch: boolean
  readonly #segmentSize: number
  readonly #logger: Logger
  /** Tags this instance's frames and its `done` waits in the log. */
  readonly #token = randomBytes(6).readUIntBE(0, 6)
  readonly #spaces = new Map<string, Space>()
  #seq = 0
  #seed = 0
  #refs = 0
  #poller: ReturnType<typeof setInterval> | undefined

  /** @throws InvalidArgumentError for an invalid or unknown option. */
  constructor (options: FileStorageOptions) {
    if (options === undefined) throw new InvalidArgumentError('Expected FileStorage options with a `basePath`')
    const { basePath, clock, fsync, watch, logger } = checkStorageOptions('FileStorage', options, FILE_OPTIONS)
    // A lone surrogate would become U+FFFD in the file name: two paths could meet in one directory.
    if (typeof basePath !== 'string' || basePath.length === 0 || basePath.includes('\0') || !isWellFormed(basePath)) {
      throw new InvalidArgumentError(`Expected \`basePath\` to be a non-empty, well-formed path, got ${JSON.stringify(basePath)}`)
    }
    if (fsync !== undefined && typeof fsync !== 'boolean') throw new InvalidArgumentError('Expected `fsync` to be a boolean')
    if (watch !== undefined && typeof watch !== 'boolean') throw new InvalidArgumentError('Expected `watch` to be a boolean')
    this.#basePath = basePath
    this.#clock = checkClock(clock)
    this.#logger = checkLogger(logger)
    this.#fsync = fsync ?? false
    this.#watch = watch ?? true
    this.#pollInterval = optInt('pollInterval', options.pollInterval, 100, 1, 2 ** 31 - 1)
    this.#segmentSize = optInt('segmentSize', options.segmentSize, DEFAULT_SEGMENT, 1024, 2 ** 31 - 1)
  }

  async connect (): Promise<void> {
    if (this.#refs++ > 0) return
    try {
      this.#seed = openBase(this.#basePath)
    } catch (err) {
      this.#refs--
      throw new StorageError(`Cannot open the queue directory ${this.#basePath}: ${(err as Error).message}`, err)
    }
    this.#poller = setInterval(() => { for (const space of this.#spaces.values()) this.#check(space) }, this.#pollInterval)
    this.#poller.unref()
  }

  async disconnect (): Promise<void> {
    if (this.#refs === 0 || --this.#refs > 0) return
    clearInterval(this.#poller)
    this.#poller = undefined
    const spaces = [...this.#spaces.values()]
    this.#spaces.clear()
    for (const space of spaces) {
      space.closed = true
      space.watcher?.close()
      space.driver.close()
    }
    await Promise.all(spaces.map(space => space.log.close()))
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (!Array.isArray(jobs)) throw new InvalidArgumentError('Expected `jobs` to be an array')
    for (const job of jobs) {
      if (typeof job?.id !== 'string' || job.id.length === 0 || !Buffer.isBuffer(job.payload)) {
        throw new InvalidArgumentError('Expected every job to have a non-empty string `id` and a Buffer `payload`')
      }
    }
    if (jobs.length === 0) return []
    const space = this.#space(queue)
    return this.#io(async () => {
      // Every id taken and nobody to register as a waiter: the answer needs no write. (Not with
      // fsync: the frames it rests on may not be on disk yet; a write and its flush make them so.)
      if (!this.#fsync) {
        this.#sync(space)
        const known = this.#known(space, jobs)
        if (known !== undefined) return known
      }
      const [outcomes] = this.#commit(space, [{ kind: 'enqueue', jobs }])
      await space.log.durable()
      return outcomes as EnqueueOutcome[]
    })
  }

  async claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const space = this.#space(queue)
    return this.#io(async () => {
      this.#sync(space)
      let jobs: ClaimedJob[] = []
      if (space.log.state.claimable(this.#clock())) {
        jobs = this.#commit(space, [{ kind: 'claim', worker: workerId, max: options.max, leaseMs: options.leaseMs }])[0] as ClaimedJob[]
      }
      if (jobs.length > 0 || options.blockMs <= 0 || this.#refs === 0 || options.signal?.aborted === true) return jobs
      return space.driver.park(workerId, options)
    })
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult> {
    const space = this.#space(queue)
    return this.#io(async () => {
      const ops: Op[] = []
      if (settlements.length > 0) ops.push({ kind: 'settle', worker: workerId, settlements })
      if (next.max > 0) {
        if (ops.length === 0) {
          // Only a claim: worth a frame only if there is something to claim.
          this.#sync(space)
          if (!space.log.state.claimable(this.#clock())) return { jobs: [], refused: [] }
        }
        ops.push({ kind: 'claim', worker: workerId, max: next.max, leaseMs: next.leaseMs })
      }
      if (ops.length === 0) return { jobs: [], refused: [] }
      const outcomes = this.#commit(space, ops)
      await space.log.durable()
      return {
        jobs: next.max > 0 ? outcomes[ops.length - 1] as ClaimedJob[] : [],
        refused: settlements.length > 0 ? outcomes[0] as readonly number[] : []
      }
    })
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    const space = this.#space(queue)
    if (ids.length === 0) return { lost: [], aborted: [] }
    return this.#io(async () => this.#commit(space, [{ kind: 'extend', worker: workerId, ids, leaseMs }])[0] as LeaseReport)
  }

  async cancel (queue: string, id: string): Promise<CancelOutcome> {
    return this.#io(async () => {
      const space = this.#existing(queue)
      const rec = space?.log.state.peek(id, this.#clock())
      if (space === undefined || rec === undefined) return 'not_found'
      if (rec.state === 'processing') return 'processing'
      if (isTerminal(rec.state)) return 'completed'
      const [outcome] = this.#commit(space, [{ kind: 'cancel', id }])
      await space.log.durable()
      return outcome as CancelOutcome
    })
  }

  async abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    return this.#io(async () => {
      const space = this.#existing(queue)
      const rec = space?.log.state.peek(id, this.#clock())
      if (space === undefined || rec === undefined) return 'not_found'
      if (isTerminal(rec.state)) return 'completed'
      const [outcome] = this.#commit(space, [{ kind: 'abort', id, ttl }])
      await space.log.durable()
      return outcome as AbortOutcome
    })
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    return this.#read(queue, state => state.status(id, this.#clock()))
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    return this.#io(async () => {
      const space = this.#existing(queue)
      const rec = space?.log.state.peek(id, this.#clock())
      if (space === undefined || rec === undefined) return 'not_found'
      if (!isTerminal(rec.state)) return 'not_terminal'
      const [outcome] = this.#commit(space, [{ kind: 'ttl', id, ttl }])
      await space.log.durable()
      return outcome as UpdateTTLOutcome
    })
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    const unsubscribe = this.#space(queue).driver.subscribe(listener, type)
    return async () => unsubscribe()
  }

  async recoverStalled (queue: string, maxStalls: number, error: Buffer, group?: ErrorGroup): Promise<RecoveryOutcome> {
    return this.#io(async () => {
      const space = this.#existing(queue)
      // No lease has expired by our clock: nothing to write (the reaper asks every few seconds).
      if (space === undefined || !space.log.state.hasExpiredLease(this.#clock())) return NOTHING
      const [outcome] = this.#commit(space, [{ kind: 'recover', maxStalls, error, ...(group !== undefined && { group }) }])
      await space.log.durable()
      return outcome as RecoveryOutcome
    })
  }

  async acquireLock (name: string, owner: string, ttl: number): Promise<boolean> {
    checkId('name', name)
    this.#connected()
    return this.#io(async () => acquireLock(lockDir(this.#basePath, name), owner, ttl, this.#clock()))
  }

  async releaseLock (name: string, owner: string): Promise<void> {
    checkId('name', name)
    this.#connected()
    return this.#io(async () => releaseLock(lockDir(this.#basePath, name), owner))
  }

  async counts (queue: string): Promise<StateCounts> {
    return this.#read(queue, state => state.counts(this.#clock()))
  }

  async clear (): Promise<void> {
    if (this.#refs === 0) return
    await this.#io(async () => {
      const open = [...this.#spaces.entries()]
      for (const [, space] of open) {
        space.watcher?.close()
        space.watcher = undefined
        await space.log.close()
      }
      for (const sub of ['queues', 'locks']) {
        const dir = join(this.#basePath, sub)
        for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true })
      }
      // Open queues start again, empty, with their subscribers and parked claims.
      for (const [queue, space] of open) {
        space.log = this.#openLog(queue)
        if (this.#watch) this.#watchSpace(space, queueDir(this.#basePath, queue))
        space.driver.run()
      }
    })
  }

  async heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void> {
    return this.#io(async () => {
      const space = ttl > 0 ? this.#space(queue) : this.#existing(queue)
      if (space !== undefined) this.#commit(space, [{ kind: 'heartbeat', worker, ttl }])
    })
  }

  async queues (): Promise<QueueSummary[]> {
    this.#connected()
    return this.#io(async () => {
      const now = this.#clock()
      const found: QueueSummary[] = []
      for (const name of queueNames(this.#basePath).sort(compareIds)) {
        const state = (this.#existing(name) as Space).log.state
        if (!state.empty) found.push(summary(name, state, now))
      }
      return found
    })
  }

  async overview (queue: string): Promise<QueueOverview> {
    return this.#read(queue, state => overview(state, this.#clock()))
  }

  async listJobs (queue: string, query: JobQuery): Promise<JobPage> {
    return this.#read(queue, state => listJobs(state, query, this.#clock()))
  }

  async getJob (queue: string, id: string): Promise<JobDetail | null> {
    return this.#read(queue, state => getJob(state, id, this.#clock()))
  }

  async apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome> {
    return this.#io(async () => {
      const space = this.#existing(queue)
      const state = space?.log.state ?? ABSENT
      if (space === undefined || options.dryRun) return state.apply(this.#clock(), action, target, options.limit, true)
      const [outcome] = this.#commit(space, [{ kind: 'apply', action, target, limit: options.limit }])
      await space.log.durable()
      return outcome as ApplyOutcome
    })
  }

  async setPaused (queue: string, paused: boolean): Promise<void> {
    const space = this.#space(queue)
    return this.#io(async () => {
      this.#commit(space, [{ kind: 'pause', paused }])
      await space.log.durable()
    })
  }

  async setRetention (queue: string, retention: Retention): Promise<void> {
    const space = this.#space(queue)
    return this.#io(async () => {
      this.#commit(space, [{ kind: 'retention', retention }])
      await space.log.durable()
    })
  }

  async failureGroups (queue: string, limit: number): Promise<FailureGroup[]> {
    return this.#read(queue, state => failureGroups(state, limit, this.#clock()))
  }

  async workers (queue: string): Promise<WorkerEntry[]> {
    return this.#read(queue, state => state.workers(this.#clock()))
  }

  /** Runs a read on the queue's current state (an empty one when the queue does not exist: it is not created). */
  async #read<T> (queue: string, read: (state: QueueState) => T): Promise<T> {
    return this.#io(async () => read(this.#existing(queue)?.log.state ?? ABSENT))
  }

  /** The queue if it exists (opened and caught up with its log), else undefined: reads never create one. */
  #existing (queue: string): Space | undefined {
    checkId('queue', queue)
    this.#connected()
    const open = this.#spaces.get(queue)
    if (open !== undefined) {
      this.#sync(open)
      return open
    }
    if (!existsSync(queueDir(this.#basePath, queue))) return undefined
    const space = this.#space(queue)
    this.#sync(space)
    return space
  }

  #connected (): void {
    if (this.#refs === 0) throw new StorageError('The FileStorage is not connected: call connect() first')
  }

  /** The open queue `queue`, opened (log loaded and replayed, watcher set) on first use. */
  #space (queue: string): Space {
    checkId('queue', queue)
    this.#connected()
    const space = this.#spaces.get(queue)
    if (space !== undefined) return space
    const opened: Space = {
      log: this.#openLog(queue),
      driver: new QueueDriver({
        state: () => opened.log.state,
        claim: w => opened.log.commit([{ kind: 'claim', worker: w.workerId, max: w.max, leaseMs: w.leaseMs }])[0] as ClaimedJob[],
        due: () => this.#check(opened),
        clock: this.#clock,
        lost: () => {
          // This process fell behind and the log it missed is gone: waiters must check their jobs.
          if (!opened.log.reloaded) return false
          opened.log.reloaded = false
          return true
        }
      }),
      watcher: undefined,
      closed: false
    }
    this.#spaces.set(queue, opened)
    if (this.#watch) this.#watchSpace(opened, queueDir(this.#basePath, queue))
    return opened
  }

  /** Opens the log of `queue`, creating its directory if needed. */
  #openLog (queue: string): QueueLog {
    try {
      return new QueueLog({
        dir: createQueueDir(this.#basePath, queue),
        seed: this.#seed,
        token: this.#token,
        nextSeq: () => ++this.#seq,
        clock: this.#clock,
        fsync: this.#fsync,
        segmentSize: this.#segmentSize
      })
    } catch (err) {
      throw new StorageError(`Cannot open queue ${JSON.stringify(queue)} in ${this.#basePath}: ${(err as Error).message}`, err)
    }
  }

  #watchSpace (space: Space, dir: string): void {
    try {
      // Not persistent: a watcher alone does not keep the process alive. Events from all writes
      // to one file coalesce in the kernel while unread, and each one only triggers a read.
      space.watcher = watch(dir, { persistent: false }, () => this.#check(space))
      space.watcher.on('error', err => {
        // e.g. the inotify limit: carry on with the poll alone.
        this.#logger.warn({ err, dir }, 'fs.watch failed: FileStorage carries on with its poll alone')
        space.watcher?.close()
        space.watcher = undefined
      })
    } catch {
      space.watcher = undefined
    }
  }

  /** Runs `fn`, turning file-system failures into StorageError. */
  async #io<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof QueueError) throw err
      throw new StorageError(`File storage operation failed: ${(err as Error).message}`, err)
    }
  }

  /** Catches up with the log, then delivers notices and wakes blocked claims. */
  #sync (space: Space): void {
    if (space.log.sync() || space.log.state.notices.size > 0 || space.log.reloaded) space.driver.run()
  }

  #commit (space: Space, ops: readonly Op[]): unknown[] {
    const outcomes = space.log.commit(ops)
    space.driver.run()
    return outcomes
  }

  /**
   * Background check (fs.watch event or poll tick); failures surface on the next call instead.
   * Only a queue someone listens to or waits on follows the log in the background: any other
   * (a producer between enqueues) catches up at its next operation, which reads the log first
   * anyway. Following every frame of busy consumers elsewhere cost an idle producer measurable
   * CPU, taken from them on a small machine.
   */
  #check (space: Space): void {
    if (space.closed || space.driver.idle) return
    try {
      this.#sync(space)
      if (space.driver.parked > 0) space.driver.run()
    } catch {
      // e.g. EIO: the next operation on this queue reads the log again and reports it.
    }
  }

  /** The outcomes of an enqueue that needs no write (every id taken, no new waiter), else undefined. */
  #known (space: Space, jobs: readonly NewJob[]): EnqueueOutcome[] | undefined {
    const state = space.log.state
    const now = this.#clock()
    const outcomes: EnqueueOutcome[] = []
    for (const job of jobs) {
      const rec = state.peek(job.id, now)
      if (rec === undefined) return undefined
      if (job.notify === true && !isTerminal(rec.state) && rec.waiters?.includes(this.#token) !== true) return undefined
      outcomes.push(existingOutcome(rec))
    }
    return outcomes
  }
}
