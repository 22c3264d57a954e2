import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { InvalidArgumentError, StorageError } from '../errors.ts'
import type { Logger } from '../types.ts'
import { validTrace } from '../trace-context.ts'
import type {
  AbortOutcome, AdminAction, AdminStorage, ApplyOptions, ApplyOutcome, BlockingClaimOptions, CancelOutcome, ClaimOptions,
  ClaimedJob, EnqueueOutcome, ErrorGroup, FailureGroup, JobDetail, JobPage, JobQuery, JobRecord, JobTarget, LeaseReport,
  NewJob, Notice, QueueOverview, QueueSummary, RecoveryOutcome, Retention, SettleResult, Settlement, StateCounts,
  UpdateTTLOutcome, WorkerEntry, WorkerInfo
} from './types.ts'
import { loadPg, typeParsers, type PgClient, type PgPool, type PgPoolClient, type PgQuery, type PgQueryable } from './pg/driver.ts'
import { Listener, type ListenerConnector } from './pg/listener.ts'
import { migrate } from './pg/migrate.ts'
import { MAX_PREFIX, Names, checkIdentifier } from './pg/names.ts'
import {
  fromRetention, statements, stateCode, stateName, toClaimed, toCounts, toDetail, toGroup, toOverview, toRecord, toSummary,
  toWorker, type Statement
} from './pg/queries.ts'
import { Notices, type QueueSlot } from './pg/notices.ts'
import { SharedOpen } from './shared-open.ts'

/** Where and how to connect: give one of `connectionString`, `pool` or `client`. */
export interface PgStorageOptions {
  /** `postgres://user:password@host:port/database`. @default process.env.DATABASE_URL ?? 'postgresql://localhost:5432/job_queue' */
  connectionString?: string
  /** A `pg.Pool` of yours: relayq queries through it, takes one of its connections for LISTEN, and never ends it. */
  pool?: PgPool
  /** A `pg.Client` of yours, connected and idle: every query and the LISTEN go through it; never closed by relayq. */
  client?: PgClient
  /** Connections of the pool relayq creates (with `connectionString`), besides its LISTEN connection. @default 10 */
  poolSize?: number
  /** Prefix of every table, function and index name: lower-case letters, digits, `_`. @default 'relayq_' */
  tablePrefix?: string
  /** Schema of the tables, created if missing. @default 'public' */
  schema?: string
  /**
   * Longest a statement may run (waiting for a lock included) before the server cancels it and
   * the call fails with a StorageError, in ms; applies to the connections relayq creates.
   * @default 60000
   */
  queryTimeout?: number
  /** Longest wait for a new connection, in ms (connections relayq creates). @default 10000 */
  connectTimeout?: number
  /** Source of the current time in epoch ms, for leases, delays, TTLs and locks. @default Date.now */
  clock?: () => number
  /** A pino-style logger for connection errors (which also go to `error` listeners). @default silent */
  logger?: Logger
}

/** Events of a PgStorage. */
export interface PgStorageEvents {
  /** A connection failed (relayq reconnects by itself); emitted only when someone listens. */
  error: [error: StorageError]
}

/** Jobs per enqueue statement: a large batch goes as several, back to back. */
const ENQUEUE_CHUNK = 2000
/**
 * How long a settle-and-claim call that leased fewer jobs than it asked for registers its worker
 * as waiting for more (the next enqueue hands them over), in ms. A blocking claim registers for
 * its own wait instead.
 */
const SETTLE_PARK_MS = 5_000
/** Longest a blocking claim that ends waits for the notice of jobs an enqueue handed it meanwhile, in ms. */
const PUSH_WAIT_MS = 2_000
/** Least interval between two checks of the tables' dead rows, in ms. */
const MAINTENANCE_INTERVAL = 2_000
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })

/**
 * PostgreSQL. Every operation is one statement (a PL/pgSQL function: one round trip); claims
 * use `FOR UPDATE SKIP LOCKED`; settle-and-claim is one call; idle consumers wait for a NOTIFY
 * on one LISTEN connection per instance; `enqueueAndWait` callers get their outcome by NOTIFY
 * (large results are read back). Tables are created by versioned migrations on `connect()`.
 * See the README's PostgreSQL section for the schema, durability and backups.
 *
 * @example
 * const storage = new PgStorage({ connectionString: 'postgres://localhost/app' })
 * const queue = new Queue({ storage, concurrency: 50 })
 */
export class PgStorage extends EventEmitter<PgStorageEvents> implements AdminStorage {
  readonly #options: PgStorageOptions
  readonly #names: Names
  readonly #sql: Record<string, Statement>
  readonly #clock: () => number
  readonly #poolSize: number
  readonly #queryTimeout: number
  readonly #connectTimeout: number
  /** This instance's token: its `done` channel, and the waiter it adds to jobs it waits for. */
  readonly #token = randomBytes(16).toString('hex')
  readonly #queueBytes = new Map<string, Buffer>()
  readonly #notices: Notices
  readonly #life: SharedOpen
  #db: PgQueryable | undefined
  #types: PgQuery['types']
  #ownPool: { end: () => Promise<void> } | undefined
  #listener: Listener | undefined
  #maintainedAt = 0
  /** A claiming call of this instance may have registered a worker as waiting (see {@link #unpark}). */
  #parks = false
  #vacuum: Promise<void> | undefined

  constructor (options: PgStorageOptions = {}) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Expected PgStorage options to be an object')
    const ways = [options.connectionString !== undefined, options.pool !== undefined, options.client !== undefined]
    if (ways.filter(Boolean).length > 1) throw new InvalidArgumentError('Give only one of `connectionString`, `pool` or `client`')
    if (options.connectionString !== undefined && (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString))) {
      throw new InvalidArgumentError('Expected `connectionString` to start with postgres:// or postgresql://')
    }
    if (options.pool !== undefined && typeof options.pool?.connect !== 'function') throw new InvalidArgumentError('Expected `pool` to be a pg.Pool')
    if (options.client !== undefined && typeof options.client?.query !== 'function') throw new InvalidArgumentError('Expected `client` to be a pg.Client')
    const prefix = checkIdentifier('tablePrefix', options.tablePrefix ?? 'relayq_', MAX_PREFIX, true)
    const schema = checkIdentifier('schema', options.schema ?? 'public', 63)
    this.#poolSize = positive('poolSize', options.poolSize, 10)
    this.#queryTimeout = positive('queryTimeout', options.queryTimeout, 60_000)
    this.#connectTimeout = positive('connectTimeout', options.connectTimeout, 10_000)
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('Expected `clock` to be a function')
    this.#options = options
    this.#names = new Names(schema, prefix)
    this.#sql = statements(this.#names)
    this.#clock = options.clock ?? Date.now
    this.#notices = new Notices(this.#names, this.#token)
    this.#life = new SharedOpen(() => this.#open(), () => { this.#close() }, err => storageError('connect', err), async () => {
      await this.#vacuum
      await this.#unpark()
    })
  }

  connect (): Promise<void> {
    return this.#life.acquire()
  }

  async disconnect (): Promise<void> {
    await this.#life.release()
  }

  async #open (): Promise<void> {
    const pg = await loadPg()
    this.#types = typeParsers(pg)
    const { pool, client } = this.#options
    let connector: ListenerConnector
    if (client !== undefined) {
      this.#db = client
      await migrate(client, this.#names)
      connector = { open: async () => client, close: () => {} }
    } else {
      const db = pool ?? new pg.Pool({
        connectionString: this.#connectionString(),
        max: this.#poolSize,
        application_name: 'relayq',
        connectionTimeoutMillis: this.#connectTimeout,
        // The server cancels a statement past the limit (a client-side timeout alone would leave
        // it running, to take effect after the caller was told it failed); the client gives up a
        // little later on a connection that stopped answering.
        statement_timeout: this.#queryTimeout,
        query_timeout: this.#queryTimeout + 5000
      })
      if (pool === undefined) this.#ownPool = db as PgPool & { end: () => Promise<void> }
      db.on('error', this.#onError)
      this.#db = db
      const migrating = await db.connect()
      try {
        await migrate(migrating, this.#names)
      } finally {
        migrating.release()
      }
      connector = pool !== undefined
        ? { open: () => pool.connect(), close: (c, broken) => (c as PgPoolClient).release(broken) }
        : {
            open: async () => {
              const c = new pg.Client({ connectionString: this.#connectionString(), application_name: 'relayq-listen', connectionTimeoutMillis: this.#connectTimeout })
              try {
                await c.connect()
              } catch (err) {
                c.on('error', () => {})
                c.end().catch(() => {})
                throw err
              }
              return c
            },
            close: c => { (c as unknown as { end: () => Promise<void> }).end().catch(() => {}) }
          }
    }
    this.#listener = new Listener(connector, {
      notice: (channel, payload) => this.#notices.deliver(channel, payload),
      gap: () => this.#notices.gap(),
      error: err => this.#onError(err)
    })
  }

  /**
   * Removes this instance's registrations as a waiting consumer (closing: an enqueue must not hand
   * jobs to it any more). One racing enqueue may still have: its jobs' leases expire and the
   * reaper runs them again.
   */
  async #unpark (): Promise<void> {
    if (!this.#parks) return
    this.#parks = false
    await this.#run('unpark', [this.#token]).catch(err => this.#onError(err as Error))
  }

  #connectionString (): string {
    return this.#options.connectionString ?? process.env.DATABASE_URL ?? 'postgresql://localhost:5432/job_queue'
  }

  #close (): void {
    this.#notices.closeAll()
    this.#listener?.close()
    this.#listener = undefined
    const db = this.#db as PgPool | undefined
    if (db !== undefined && this.#options.client === undefined) {
      const emitter = db as unknown as EventEmitter
      emitter.removeListener('error', this.#onError)
      // An idle client of a pool being ended can still see its connection terminated (a server
      // shutting down): the pool re-emits that as its own `error`, which must not crash the process.
      if (this.#ownPool !== undefined) emitter.on('error', () => {})
    }
    this.#db = undefined
    this.#ownPool?.end().catch(() => {})
    this.#ownPool = undefined
  }

  readonly #onError = (err: Error): void => {
    const error = storageError('connection', err)
    this.#options.logger?.error({ err: error }, 'relayq: PostgreSQL connection error')
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  /** Runs one statement (prepared once per connection); rows as arrays. */
  async #run (key: string, values: unknown[], on: PgQueryable | undefined = this.#db): Promise<unknown[][]> {
    if (on === undefined) throw new StorageError('PgStorage is not connected: call connect() first')
    const s = this.#sql[key]
    try {
      return (await on.query({ name: s.name, text: s.text, values, rowMode: 'array', types: this.#types })).rows
    } catch (err) {
      throw storageError(key, err)
    }
  }

  #q (queue: string): Buffer {
    let bytes = this.#queueBytes.get(queue)
    if (bytes === undefined) {
      bytes = Buffer.from(queue)
      if (this.#queueBytes.size > 10_000) this.#queueBytes.clear()
      this.#queueBytes.set(queue, bytes)
    }
    return bytes
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (jobs.length === 0) return []
    if (jobs.length <= ENQUEUE_CHUNK) return await this.#enqueue(queue, jobs, this.#db, false)
    const outcomes: EnqueueOutcome[] = []
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) outcomes.push(...await this.#enqueue(queue, jobs.slice(i, i + ENQUEUE_CHUNK), this.#db, false))
    return outcomes
  }

  /**
   * Enqueues inside a transaction of yours: the jobs exist if and only if it commits. `client`
   * is the connection your transaction runs on (a `pg.Client` or a pool's client after BEGIN).
   * Jobs are answered `queued` unless their id is taken now; a job whose id is taken by the time
   * the transaction commits is dropped as a duplicate. `notify` is not supported here.
   */
  async enqueueIn (client: PgQueryable, queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (typeof client?.query !== 'function') throw new InvalidArgumentError('Expected `client` to be a pg client')
    if (jobs.length === 0) return []
    if (this.#db === undefined) throw new StorageError('PgStorage is not connected: call connect() first')
    return await this.#enqueue(queue, jobs, client, true)
  }

  async #enqueue (queue: string, jobs: readonly NewJob[], on: PgQueryable | undefined, tx: boolean): Promise<EnqueueOutcome[]> {
    const n = jobs.length
    const ids = new Array<Buffer>(n)
    const payloads = new Array<Buffer>(n)
    const maxAttempts = new Array<number>(n)
    const ttls = new Array<number>(n)
    const delays = new Array<number>(n)
    const runTimeouts = new Array<number>(n)
    const notify = new Array<boolean>(n)
    let waits = false
    // Built only once a job carries a trace context: NULL (no array) otherwise.
    let traces: Array<string | null> | null = null
    for (let i = 0; i < n; i++) {
      const job = jobs[i]
      if (job.trace !== undefined) {
        const trace = validTrace(job.trace)
        if (trace !== undefined) (traces ??= new Array<string | null>(n).fill(null))[i] = trace
      }
      ids[i] = Buffer.from(job.id)
      payloads[i] = job.payload
      maxAttempts[i] = job.maxAttempts
      ttls[i] = job.resultTTL
      delays[i] = job.delay
      runTimeouts[i] = job.runTimeout ?? 0
      notify[i] = job.notify === true
      if (notify[i]) waits = true
    }
    const now = this.#clock()
    const rows = tx
      ? await this.#run('enqueueTx', [this.#q(queue), now, ids, payloads, maxAttempts, ttls, delays, runTimeouts, traces], on)
      : await this.#run('enqueue', [this.#q(queue), now, waits ? this.#token : null, ids, payloads, maxAttempts, ttls, delays, runTimeouts, notify, traces], on)
    const outcomes = new Array<EnqueueOutcome>(n).fill(QUEUED)
    for (const row of rows) outcomes[(row[0] as number) - 1] = existing(row[1] as string, row[2] as Buffer | null)
    return outcomes
  }

  async claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const { max, leaseMs, blockMs, signal } = options
    const deadline = Date.now() + blockMs
    const slot = this.#notices.slot(queue)
    const given = this.#notices.takePushed(slot, workerId)
    if (given.length > 0) return given
    let listening = false
    // The last claiming call found the queue drained and no job became ready since (no wake-up
    // heard): wait at once, without a claim that would find nothing (that call also registered
    // the worker as waiting, so the next enqueue hands its jobs over). Once only: after a wait that
    // ended, a claim renews the registration.
    let drained = blockMs > 0 && slot.emptyAt === slot.gen && this.#hears()
    if (drained) slot.emptyAt = undefined
    for (;;) {
      const gen = slot.gen
      let jobs: ClaimedJob[] = []
      let nextDue: number | null
      if (drained) {
        drained = false
        listening = true
        nextDue = slot.emptyDue
      } else {
        const park = blockMs > 0 && this.#hears() ? this.#token : null
        if (park !== null) this.#parks = true
        ;({ jobs, nextDue } = await this.#take('claim', [this.#q(queue), this.#clock(), Buffer.from(workerId), max, leaseMs, park, blockMs], slot, max, park !== null))
        const pushed = this.#notices.takePushed(slot, workerId)
        if (pushed.length > 0) jobs = jobs.concat(pushed)
        if (jobs.length > 0 || blockMs <= 0 || signal?.aborted === true || !this.#life.isOpen) return jobs
      }
      if (!listening) {
        // Wake-ups and handed-over jobs are heard from now on: claim again (registering as
        // waiting), in case a job came before.
        await this.#listen(this.#names.wakeChannel)
        await this.#listen(this.#names.pushChannel(this.#token))
        listening = true
        continue
      }
      if (slot.gen !== gen) continue
      const remaining = deadline - Date.now()
      if (remaining <= 0) return await this.#endWait(slot, queue, workerId)
      const due = nextDue === null ? Infinity : Math.max(1, nextDue - this.#clock())
      const woke = await this.#notices.park(slot, Math.min(remaining, due), signal)
      const pushed = this.#notices.takePushed(slot, workerId)
      if (pushed.length > 0) return pushed
      if (!this.#life.isOpen || isAborted(signal) || (!woke && due >= remaining)) return await this.#endWait(slot, queue, workerId)
    }
  }

  /**
   * A blocking claim ends without jobs: its worker's registration as waiting goes, so that no
   * enqueue hands it jobs from now on. One that did meanwhile (the registration is used up) is
   * waited for: its jobs are leased to this worker and answered (a consumer that is stopping
   * hands them back); one whose notice is lost (a LISTEN reconnect) runs again once its lease expires.
   */
  async #endWait (slot: QueueSlot, queue: string, workerId: string): Promise<ClaimedJob[]> {
    // The registration goes: the next blocking claim sends a claim (which registers again).
    slot.emptyAt = undefined
    if (this.#parks && this.#life.isOpen) {
      const rows = await this.#run('unparkWorker', [this.#q(queue), Buffer.from(workerId)]).catch(() => [])
      if (rows.length > 0 && rows[0][0] === 0) {
        const until = Date.now() + PUSH_WAIT_MS
        while (!slot.pushed.has(workerId) && Date.now() < until && this.#life.isOpen) await this.#notices.park(slot, until - Date.now(), undefined)
      }
    }
    return this.#notices.takePushed(slot, workerId)
  }

  /** Whether wake-ups and handed-over jobs reach this instance now. */
  #hears (): boolean {
    const listener = this.#listener
    return listener !== undefined && listener.hears(this.#names.wakeChannel) && listener.hears(this.#names.pushChannel(this.#token))
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult> {
    const n = settlements.length
    const types = new Array<string>(n)
    const ids = new Array<Buffer>(n)
    const attempts = new Array<number>(n)
    const bodies = new Array<Buffer | null>(n)
    const ns = new Array<number>(n)
    const keys = new Array<Buffer | null>(n).fill(null)
    const names = new Array<Buffer | null>(n).fill(null)
    const messages = new Array<Buffer | null>(n).fill(null)
    const frames = new Array<Buffer | null>(n).fill(null)
    for (let i = 0; i < n; i++) {
      const s = settlements[i]
      ids[i] = Buffer.from(s.id)
      attempts[i] = s.attempt
      switch (s.type) {
        case 'complete': types[i] = 'c'; bodies[i] = s.result; ns[i] = s.ttl; break
        case 'fail':
          types[i] = 'e'
          bodies[i] = s.error
          ns[i] = s.ttl
          if (s.group !== undefined) {
            keys[i] = Buffer.from(s.group.key)
            names[i] = Buffer.from(s.group.name)
            messages[i] = Buffer.from(s.group.message)
            frames[i] = Buffer.from(s.group.frame)
          }
          break
        case 'cancel': types[i] = 'x'; bodies[i] = null; ns[i] = s.ttl; break
        case 'retry': types[i] = 'r'; bodies[i] = s.error; ns[i] = s.delay; break
        case 'release': types[i] = 'l'; bodies[i] = null; ns[i] = 0; break
      }
    }
    const slot = this.#notices.slot(queue)
    const park = next.max > 0 && this.#hears() ? this.#token : null
    if (park !== null) this.#parks = true
    const { jobs, refused } = await this.#take('settle', [
      this.#q(queue), this.#clock(), Buffer.from(workerId), types, ids, attempts, bodies, ns, keys, names, messages, frames, next.max, next.leaseMs,
      park, SETTLE_PARK_MS
    ], slot, next.max, park !== null)
    const pushed = this.#notices.takePushed(slot, workerId)
    return { jobs: pushed.length > 0 ? jobs.concat(pushed) : jobs, refused }
  }

  /**
   * Runs a claiming statement of up to `max` jobs: the jobs, then the meta row (refused
   * settlements, next due time). Remembers in `slot` whether it drained the queue (see
   * {@link QueueSlot.emptyAt}): only a statement that registered the worker as waiting
   * (`registers`) counts, so that a claim that then waits without a statement of its own is
   * handed the next jobs.
   */
  async #take (key: string, values: unknown[], slot: QueueSlot, max: number, registers: boolean): Promise<{ jobs: ClaimedJob[], refused: number[], nextDue: number | null }> {
    const gen = slot.gen
    // Heard before the statement starts: a job that becomes ready after its snapshot wakes us.
    // Registered as waiting by the same statement: the next enqueue hands its jobs over.
    const heard = registers && max > 0 && this.#hears()
    const rows = await this.#run(key, values)
    const jobs: ClaimedJob[] = []
    let refused: number[] = []
    let nextDue: number | null = null
    for (const row of rows) {
      if (row[0] === null) {
        refused = (row[8] as number[] | null) ?? []
        nextDue = row[9] as number | null
      } else {
        jobs.push(toClaimed(row))
      }
    }
    if (max > 0) {
      if (jobs.length >= max) {
        slot.emptyAt = undefined
      } else if (heard) {
        // Two calls in flight may both find it drained: the earlier due time of the two stands.
        const due = slot.emptyAt === gen && slot.emptyDue !== null ? Math.min(slot.emptyDue, nextDue ?? Infinity) : nextDue
        slot.emptyAt = gen
        slot.emptyDue = due
      }
    }
    return { jobs, refused, nextDue }
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    if (ids.length === 0) return { lost: [], aborted: [] }
    const rows = await this.#run('extend', [this.#q(queue), this.#clock(), Buffer.from(workerId), ids.map(id => Buffer.from(id)), leaseMs])
    const lost: string[] = []
    const aborted: string[] = []
    for (const row of rows) ((row[1] as boolean) ? lost : aborted).push((row[0] as Buffer).toString())
    return { lost, aborted }
  }

  async cancel (queue: string, id: string): Promise<CancelOutcome> {
    const rows = await this.#run('cancel', [this.#q(queue), this.#clock(), Buffer.from(id), 'c', 0])
    return rows[0][0] as CancelOutcome
  }

  async abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    const rows = await this.#run('cancel', [this.#q(queue), this.#clock(), Buffer.from(id), 'a', ttl])
    return rows[0][0] as AbortOutcome
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    const rows = await this.#run('status', [this.#q(queue), Buffer.from(id), this.#clock()])
    return rows.length === 0 ? null : toRecord(id, rows[0])
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    const rows = await this.#run('ttl', [this.#q(queue), this.#clock(), Buffer.from(id), ttl])
    return rows[0][0] as UpdateTTLOutcome
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    const remove = this.#notices.add(queue, listener, type)
    try {
      if (type === undefined || type === 'done') await this.#listen(this.#names.doneChannel(this.#token))
      if (type === undefined || type === 'abort') await this.#listen(this.#names.abortChannel)
    } catch (err) {
      remove()
      throw err
    }
    return async () => remove()
  }

  async #listen (channel: string): Promise<void> {
    if (this.#listener === undefined) throw new StorageError('PgStorage is not connected: call connect() first')
    await this.#listener.listen(channel).catch(err => { throw storageError('listen', err) })
  }

  async recoverStalled (queue: string, maxStalls: number, error: Buffer, group?: ErrorGroup): Promise<RecoveryOutcome> {
    const g = group === undefined ? [null, null, null, null] : [group.key, group.name, group.message, group.frame].map(s => Buffer.from(s))
    const rows = await this.#run('recover', [this.#q(queue), this.#clock(), maxStalls, error, ...g])
    const requeued: string[] = []
    const failed: string[] = []
    for (const row of rows) {
      if (row[0] === null) continue
      ;((row[1] as boolean) ? failed : requeued).push((row[0] as Buffer).toString())
    }
    this.#maintain()
    return { requeued, failed }
  }

  /**
   * Vacuums relayq's tables when their dead rows outgrow the live ones (checked at most every
   * 2 s, on the reaper's passes): relayq does not depend on autovacuum, and the VACUUM also
   * refreshes the planner statistics.
   */
  #maintain (): void {
    const now = Date.now()
    if (this.#vacuum !== undefined || now - this.#maintainedAt < MAINTENANCE_INTERVAL) return
    this.#maintainedAt = now
    this.#vacuum = (async () => {
      const [row] = await this.#run('deadTuples', [])
      if (row === undefined) return
      const dead = row[0] as number
      const live = row[1] as number
      if (dead > 1000 + 0.2 * live) {
        const db = this.#db
        if (db !== undefined) await db.query({ text: this.#sql.vacuum.text })
      }
    })().catch(err => this.#onError(err as Error)).finally(() => { this.#vacuum = undefined })
  }

  async acquireLock (name: string, owner: string, ttl: number): Promise<boolean> {
    const rows = await this.#run('lock', [Buffer.from(name), Buffer.from(owner), this.#clock(), ttl])
    return rows[0][0] === true
  }

  async releaseLock (name: string, owner: string): Promise<void> {
    await this.#run('unlock', [Buffer.from(name), Buffer.from(owner)])
  }

  async counts (queue: string): Promise<StateCounts> {
    const rows = await this.#run('counts', [this.#q(queue), this.#clock()])
    return toCounts(rows[0][0] as number[])
  }

  async clear (): Promise<void> {
    if (this.#db === undefined) return
    await this.#run('clear', [])
  }

  async heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void> {
    await this.#run('heartbeat', [
      this.#q(queue), this.#clock(), Buffer.from(worker.id), Buffer.from(worker.host), worker.pid, worker.concurrency, worker.running,
      worker.startedAt, ttl
    ])
  }

  async queues (): Promise<QueueSummary[]> {
    const rows = await this.#run('queues', [this.#clock()])
    return rows.map(row => ({ name: (row[0] as Buffer).toString(), counts: toCounts(row[2] as number[]), paused: row[1] as boolean }))
  }

  async overview (queue: string): Promise<QueueOverview> {
    const rows = await this.#run('overview', [this.#q(queue), this.#clock()])
    return toOverview(rows[0])
  }

  async listJobs (queue: string, query: JobQuery): Promise<JobPage> {
    const rows = await this.#run(query.order === 'asc' ? 'listAsc' : 'listDesc', [
      this.#q(queue), stateCode(query.state), this.#clock(), query.after ?? null, query.limit + 1
    ])
    const more = rows.length > query.limit
    const jobs = (more ? rows.slice(0, query.limit) : rows).map(toSummary)
    return { jobs, next: more ? jobs[jobs.length - 1].stamp : null }
  }

  async getJob (queue: string, id: string): Promise<JobDetail | null> {
    const rows = await this.#run('getJob', [this.#q(queue), Buffer.from(id), this.#clock()])
    return rows.length === 0 ? null : toDetail(rows[0])
  }

  async apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome> {
    const ids = 'ids' in target ? target.ids.map(id => Buffer.from(id)) : null
    const state = 'ids' in target ? null : stateCode(target.state)
    const [row] = await this.#run('apply', [
      this.#q(queue), this.#clock(), action, ids, state,
      'ids' in target ? null : target.before ?? null,
      'ids' in target || target.group === undefined ? null : Buffer.from(target.group),
      'ids' in target ? null : target.after ?? null,
      'ids' in target ? null : target.until ?? null,
      options.limit, options.dryRun
    ])
    const results = row[2] as ApplyOutcome['results'] | null
    return {
      matched: row[0] as number,
      changed: row[1] as number,
      ...(results !== null && { results }),
      next: row[3] as number | null,
      until: row[4] as number
    }
  }

  async setPaused (queue: string, paused: boolean): Promise<void> {
    await this.#run('pause', [this.#q(queue), paused])
  }

  async setRetention (queue: string, retention: Retention): Promise<void> {
    await this.#run('retain', [this.#q(queue), this.#clock(), fromRetention(retention)])
  }

  async failureGroups (queue: string, limit: number): Promise<FailureGroup[]> {
    return (await this.#run('groups', [this.#q(queue), this.#clock(), limit])).map(toGroup)
  }

  async workers (queue: string): Promise<WorkerEntry[]> {
    return (await this.#run('workers', [this.#q(queue), this.#clock()])).map(toWorker)
  }

  /** The schema-qualified names of relayq's tables (for operators and tests). */
  get tables (): { jobs: string, queues: string, lanes: string, groups: string, workers: string, locks: string, inbox: string } {
    const n = this.#names
    return { jobs: n.of('jobs'), queues: n.of('queues'), lanes: n.of('lanes'), groups: n.of('groups'), workers: n.of('workers'), locks: n.of('locks'), inbox: n.of('inbox') }
  }
}

/** Read through a function: TypeScript keeps a property narrowed across an await. */
function isAborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function positive (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be an integer >= 1, got ${String(value)}`)
  }
  return value
}

/** What an enqueue of a taken id reports, from the existing job's state and result or error. */
function existing (code: string, body: Buffer | null): EnqueueOutcome {
  const state = stateName(code)
  switch (state) {
    case 'completed': return { status: 'completed', result: body ?? Buffer.alloc(0) }
    case 'failed': return { status: 'failed', error: body ?? Buffer.alloc(0) }
    case 'cancelled': return { status: 'cancelled' }
    default: return { status: 'duplicate', state }
  }
}

/** A StorageError for a failed operation. */
function storageError (operation: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err
  const message = typeof (err as Error)?.message === 'string' ? (err as Error).message : String(err)
  return new StorageError(`PostgreSQL ${operation} failed: ${message}`, err)
}
