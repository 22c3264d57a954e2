import { maxValueBytes, storable, unavailable } from './bytes.ts'
import { InvalidArgumentError, JobCancelledError, JobFailedError, QueueClosedError, SerdeError, TimeoutError, safeMessage } from './errors.ts'
import { Emitter, reportError } from './emitter.ts'
import { componentLogger, Lifecycle } from './lifecycle.ts'
import { checkId, checkResultTTL, resolveConfig, resolveJobOptions, type JobOptions, type ResolvedConfig } from './options.ts'
import { decodeError } from './serde.ts'
import { probe } from './instrument.ts'
import type { EnqueueOutcome, JobRecord, NewJob, Notice } from './storage/types.ts'
import type {
  CancelResult, CommonConfig, EnqueueAndWaitOptions, EnqueueOptions, EnqueueResult, Logger, MessageStatus, QueueEvents,
  UpdateResultTTLResult
} from './types.ts'

/** One pending `enqueueAndWait`; several calls for one id form a chain. */
interface Waiter {
  readonly resolve: (value: any) => void
  readonly reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout> | undefined
  next: Waiter | undefined
}

/**
 * One job waiting to be sent. An `enqueueAndWait` gives its waiter (the outcome goes to the wait),
 * an `enqueue` its promise's functions: no closure per call on the hot path.
 */
type Pending =
  | { readonly job: NewJob, readonly waiter: Waiter, readonly resolve: undefined, readonly reject: undefined }
  | { readonly job: NewJob, readonly waiter: undefined, readonly resolve: (outcome: EnqueueOutcome) => void, readonly reject: (error: unknown) => void }

/** One job of `enqueueMany`. */
export interface BulkJob<TPayload> { id: string, payload: TPayload, options?: EnqueueOptions }

const QUEUED = Object.freeze({ status: 'queued' as const })
/** Enqueue calls a producer keeps in flight. */
const MAX_INFLIGHT = 2
/** Pending jobs from which an idle producer splits them over two calls. */
const SPLIT_BATCH = 16

/**
 * The producing side: enqueue jobs, wait for their results, cancel them, read their status.
 * A producer never claims jobs. It connects on first use (a failed connect is tried again by the
 * next call); `stop()` releases the storage, and calls reject with QueueClosedError until
 * `start()` opens it again.
 *
 * @example
 * const producer = new Producer({ storage })
 * const sum = await producer.enqueueAndWait('sum-1', { a: 1, b: 2 }, { timeout: 5000 })
 */
export class Producer<TPayload = unknown, TResult = unknown> extends Emitter<QueueEvents<TResult>> {
  readonly #config: ResolvedConfig<TPayload, TResult>
  readonly #events: Emitter<QueueEvents<TResult>>
  readonly #waiters = new Map<string, Waiter>()
  readonly #logger: Logger
  readonly #lifecycle: Lifecycle
  #subscribing: Promise<() => Promise<void>> | undefined
  #subscribed = false
  /** Enqueue calls in flight (at most {@link MAX_INFLIGHT}). */
  #inflight = 0
  #pending: Pending[] = []
  #flushing = false

  /** @param events internal: where events go (a Queue passes itself). */
  constructor (config: CommonConfig<TPayload, TResult>, events?: Emitter<QueueEvents<TResult>>) {
    super()
    // A Queue passes its own configuration: the Queue's option names apply.
    this.#config = resolveConfig<TPayload, TResult>(config, events === undefined ? 'Producer' : 'Queue')
    this.#events = events ?? this
    this.#logger = componentLogger(this.#config.logger, { component: 'producer' })
    const { storage, stopTimeout } = this.#config
    this.#lifecycle = new Lifecycle({
      name: 'producer',
      logger: this.#logger,
      stopTimeout,
      stopStep: 'the unsubscribe',
      report: (err, msg) => reportError(this.#events, this.#logger, err, msg),
      start: async defer => {
        await storage.connect()
        defer(() => storage.disconnect(), 'the storage to disconnect')
      },
      stop: () => this.#close()
    })
  }

  /**
   * Connects the storage (called for you on first use). Restartable: after `stop()` it connects
   * again. See {@link Lifecycle} for concurrent calls.
   */
  start (): Promise<void> {
    return this.#lifecycle.start()
  }

  /** Rejects pending waits with QueueClosedError and releases the storage. Idempotent. */
  stop (): Promise<void> {
    return this.#lifecycle.stop()
  }

  /** The first part of a stop: pending waits end, the subscription goes. */
  async #close (): Promise<void> {
    for (const [id, waiter] of this.#waiters) this.#finish(id, waiter, undefined, new QueueClosedError('The producer stopped before the job finished'))
    const subscribing = this.#subscribing
    this.#subscribing = undefined
    this.#subscribed = false
    // A subscription that failed has nothing to undo.
    if (subscribing !== undefined) await (await subscribing.catch(() => async () => {}))()
  }

  /** Enqueues a job; resolves `queued`, `duplicate` (the id is taken) or `completed` (cached result). */
  async enqueue (id: string, payload: TPayload, options?: EnqueueOptions): Promise<EnqueueResult<TResult>> {
    const job = this.#prepare(id, payload, resolveJobOptions(options as Record<string, unknown>, this.#config))
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    return this.#toResult(id, await this.#submit(job))
  }

  /**
   * Enqueues many jobs in as few storage round trips as possible; validates all before storing any
   * (a bad job, or a hole in a sparse array, throws InvalidArgumentError naming its index).
   * An empty array answers `[]`.
   */
  async enqueueMany (jobs: ReadonlyArray<BulkJob<TPayload>>): Promise<Array<EnqueueResult<TResult>>> {
    if (!Array.isArray(jobs)) throw new InvalidArgumentError('Expected `jobs` to be an array')
    const prepared = new Array<NewJob>(jobs.length)
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i] as BulkJob<TPayload> | undefined
      try {
        if (j === null || typeof j !== 'object') throw new InvalidArgumentError('Expected { id, payload, options? }')
        prepared[i] = this.#prepare(j.id, j.payload, resolveJobOptions(j.options as Record<string, unknown>, this.#config))
      } catch (err) {
        // Our own fresh error (InvalidArgumentError or ResultTTLError): say which job, keep its class.
        (err as Error).message = `jobs[${i}]: ${(err as Error).message}`
        // Nothing is stored: what an observer started for the jobs before this one ends here.
        for (let k = 0; k < i; k++) probe?.enqueued(this.#config.name, prepared[k], undefined, err)
        throw err
      }
    }
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    if (prepared.length === 0) return []
    const observer = probe
    let outcomes: EnqueueOutcome[]
    try {
      outcomes = await this.#config.storage.enqueue(this.#config.name, prepared)
    } catch (err) {
      if (observer !== undefined) for (const job of prepared) observer.enqueued(this.#config.name, job, undefined, err)
      throw err
    }
    if (observer !== undefined) prepared.forEach((job, i) => observer.enqueued(this.#config.name, job, outcomes[i]))
    return outcomes.map((o, i) => this.#toResult(prepared[i].id, o))
  }

  /**
   * Enqueues a job and resolves with its handler's result. Rejects with TimeoutError,
   * JobFailedError or JobCancelledError. A finished id answers from the stored outcome at once.
   */
  enqueueAndWait (id: string, payload: TPayload, options?: EnqueueAndWaitOptions): Promise<TResult> {
    const observer = probe
    if (observer !== undefined) return observer.call(this.#config.name, id, () => this.#enqueueAndWait(id, payload, options))
    return this.#enqueueAndWait(id, payload, options)
  }

  #enqueueAndWait (id: string, payload: TPayload, options: EnqueueAndWaitOptions | undefined): Promise<TResult> {
    let job: NewJob
    let timeout: number
    try {
      const opts = resolveJobOptions(options as Record<string, unknown>, this.#config, true)
      job = this.#prepare(id, payload, opts, true)
      timeout = opts.timeout
    } catch (err) {
      return Promise.reject(err)
    }
    // Once started and subscribed (the usual case) no async step is needed before the wait.
    if (this.#subscribed && this.#lifecycle.started) return this.#wait(job, timeout)
    return this.#startThenWait(job, timeout)
  }

  async #startThenWait (job: NewJob, timeout: number): Promise<TResult> {
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    // A stop began meanwhile: a subscription made now would outlive it.
    if (!this.#lifecycle.started) throw new QueueClosedError()
    // Subscribe before enqueueing so a fast job's notice cannot slip past us.
    if (!this.#subscribed) await this.#subscribe()
    return await this.#wait(job, timeout)
  }

  #wait (job: NewJob, timeout: number): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      const id = job.id
      const waiter: Waiter = { resolve, reject, timer: undefined, next: this.#waiters.get(id) }
      this.#waiters.set(id, waiter)
      waiter.timer = setTimeout(this.#timeout, timeout, id, waiter, timeout)
      this.#submit(job, waiter)
    })
  }

  /**
   * Cancels a job that has not started: `cancelled`, or `processing` if it runs, `completed` if it
   * finished, `not_found`. With `{ running: true }` a running job is cancelled too: its handler's
   * `job.signal` aborts and the job ends cancelled (status `cancelled`).
   */
  async cancel (id: string, options?: { running?: boolean }): Promise<CancelResult> {
    checkId('id', id)
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    const { storage, name, resultTTL } = this.#config
    const outcome = options?.running === true ? await storage.abort(name, id, resultTTL) : await storage.cancel(name, id)
    // A running job is cancelled once its worker stops it: the consumer emits `cancelled` then.
    if (outcome === 'cancelled') this.#events.emit('cancelled', id)
    return { status: outcome === 'aborting' ? 'cancelled' : outcome }
  }

  /** The result of a completed job, or null. */
  async getResult (id: string): Promise<TResult | null> {
    const status = await this.getStatus(id)
    return status?.state === 'completed' ? (status.result as TResult) : null
  }

  /** The job's state, attempts, and result or error; null when unknown or expired. */
  async getStatus (id: string): Promise<MessageStatus<TResult> | null> {
    checkId('id', id)
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    const record = await this.#config.storage.getStatus(this.#config.name, id)
    if (record === null) return null
    const status: MessageStatus<TResult> = { id, state: record.state, createdAt: record.createdAt, attempts: record.attempts }
    if (record.result !== undefined) status.result = this.#decodeResult(id, record.result)
    if (record.error !== undefined) status.error = decodeError(record.error)
    return status
  }

  /** Changes how long a finished job's record is kept, counting from now, in ms. */
  async updateResultTTL (id: string, ttl: number): Promise<UpdateResultTTLResult> {
    checkResultTTL(ttl)
    checkId('id', id)
    if (!this.#lifecycle.started) await this.#lifecycle.ready()
    return { status: await this.#config.storage.updateResultTTL(this.#config.name, id, ttl) }
  }

  /**
   * Validates and encodes one job; before anything is stored, throws InvalidArgumentError (bad
   * input, a payload larger than the storage stores) or SerdeError (a serde that returns no bytes).
   */
  #prepare (id: unknown, payload: TPayload, opts: JobOptions, notify = false): NewJob {
    checkId('id', id)
    let raw: unknown
    try {
      raw = this.#config.payloadSerde.serialize(payload)
    } catch (err) {
      throw new InvalidArgumentError(`Cannot serialize the payload of job '${id as string}': ${safeMessage(err)}`, err)
    }
    const bytes = storable(raw, maxValueBytes(this.#config.storage), `The payload of job '${id as string}'`)
    if (bytes instanceof Error) throw bytes
    const job: NewJob = { id: id as string, payload: bytes, maxAttempts: opts.maxAttempts, resultTTL: opts.resultTTL, delay: opts.delay, runTimeout: opts.runTimeout, notify }
    const observer = probe
    return observer === undefined ? job : observer.enqueue(this.#config.name, job)
  }

  #toResult (id: string, outcome: EnqueueOutcome): EnqueueResult<TResult> {
    switch (outcome.status) {
      case 'queued':
        this.#events.emit('enqueued', id)
        return QUEUED
      case 'duplicate': return { status: 'duplicate', existingState: outcome.state }
      case 'completed': return { status: 'completed', result: this.#decodeResult(id, outcome.result) }
      case 'failed': return { status: 'duplicate', existingState: 'failed' }
      case 'cancelled': return { status: 'duplicate', existingState: 'cancelled' }
    }
  }

  /**
   * Sends one job to the storage. Jobs submitted in the same tick go together, and while two
   * calls are in flight later jobs wait for the next one: one round trip per batch under load,
   * no added latency when idle.
   */
  #submit (job: NewJob): Promise<EnqueueOutcome>
  #submit (job: NewJob, waiter: Waiter): void
  #submit (job: NewJob, waiter?: Waiter): Promise<EnqueueOutcome> | undefined {
    if (waiter !== undefined) {
      this.#queue({ job, waiter, resolve: undefined, reject: undefined })
      return
    }
    return new Promise((resolve, reject) => this.#queue({ job, waiter: undefined, resolve, reject }))
  }

  #queue (pending: Pending): void {
    this.#pending.push(pending)
    if (!this.#flushing && this.#inflight < MAX_INFLIGHT) {
      this.#flushing = true
      process.nextTick(this.#flush)
    }
  }

  /**
   * Sends what is pending. With nothing in flight, a large batch goes as two calls, so that the
   * storage works on one while this process encodes the other (measured on Redis with 50
   * enqueues in flight: one call at a time makes the two take turns).
   */
  readonly #flush = (): void => {
    this.#flushing = false
    const pending = this.#pending
    if (pending.length === 0 || this.#inflight >= MAX_INFLIGHT) return
    if (this.#inflight === 0 && pending.length >= SPLIT_BATCH) {
      const half = Math.ceil(pending.length / 2)
      this.#pending = pending.slice(half)
      this.#send(pending.slice(0, half))
      this.#flushing = true
      process.nextTick(this.#flush)
      return
    }
    this.#pending = []
    this.#send(pending)
  }

  /** What an enqueue outcome means for a pending `enqueueAndWait`. */
  #waitOutcome (id: string, waiter: Waiter, outcome: EnqueueOutcome): void {
    switch (outcome.status) {
      case 'queued':
        this.#events.emit('enqueued', id)
        break
      case 'completed':
        this.#finish(id, waiter, outcome.result, undefined)
        break
      case 'failed':
        this.#finish(id, waiter, undefined, this.#failure(id, outcome.error))
        break
      case 'cancelled':
        this.#finish(id, waiter, undefined, new JobCancelledError(id))
        break
    }
  }

  #send (batch: Pending[]): void {
    this.#inflight++
    const jobs = new Array<NewJob>(batch.length)
    for (let i = 0; i < batch.length; i++) jobs[i] = batch[i].job
    const observer = probe
    this.#config.storage.enqueue(this.#config.name, jobs).then(outcomes => {
      this.#inflight--
      if (observer !== undefined) for (let i = 0; i < jobs.length; i++) observer.enqueued(this.#config.name, jobs[i], outcomes[i])
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]
        if (p.waiter !== undefined) this.#waitOutcome(p.job.id, p.waiter, outcomes[i])
        else p.resolve(outcomes[i])
      }
      this.#flush()
    }, err => {
      this.#inflight--
      if (batch.length > 1 && !unavailable(err)) {
        // The storage refused something in the batch: its halves go apart, so that only the job at fault fails.
        const half = Math.ceil(batch.length / 2)
        this.#send(batch.slice(0, half))
        this.#send(batch.slice(half))
        return
      }
      if (observer !== undefined) for (const job of jobs) observer.enqueued(this.#config.name, job, undefined, err)
      for (const p of batch) {
        if (p.waiter !== undefined) this.#finish(p.job.id, p.waiter, undefined, err as Error)
        else p.reject(err)
      }
      this.#flush()
    })
  }

  #subscribe (): Promise<unknown> {
    const subscribing = this.#subscribing ?? this.#config.storage.subscribe(this.#config.name, this.#onNotice, 'done')
    this.#subscribing = subscribing
    // A stop (and maybe a restart) may come before it settles: only the current subscription counts.
    return subscribing.then(() => { if (this.#subscribing === subscribing) this.#subscribed = true }, err => {
      if (this.#subscribing === subscribing) this.#subscribing = undefined
      throw err
    })
  }

  readonly #onNotice = (notice: Notice): void => {
    if (notice.type === 'gap') {
      // Notices may have been lost: ask the storage how every awaited job stands.
      for (const [id, waiter] of this.#waiters) this.#recheck(id, waiter)
      return
    }
    if (notice.type !== 'done') return
    const waiter = this.#waiters.get(notice.id)
    if (waiter === undefined) return
    const id = notice.id
    if (notice.state === 'completed') {
      if (notice.result !== undefined) this.#finish(id, waiter, notice.result, undefined)
      else this.#fetch(id, waiter)
    } else if (notice.state === 'failed') {
      if (notice.error !== undefined) this.#finish(id, waiter, undefined, this.#failure(id, notice.error))
      else this.#fetch(id, waiter)
    } else {
      this.#finish(id, waiter, undefined, new JobCancelledError(id))
    }
  }

  /** After a `gap`: finish the wait if the job reached a terminal state meanwhile. */
  #recheck (id: string, waiter: Waiter): void {
    this.#config.storage.getStatus(this.#config.name, id).then(record => {
      // Only a terminal record ends the wait: no record may also mean our enqueue is still in flight.
      if (record?.state === 'completed' || record?.state === 'failed' || record?.state === 'cancelled') this.#fetched(id, waiter, record)
    }, (err: Error) => this.#finish(id, waiter, undefined, err))
  }

  /** The notice left the outcome out (too large to inline): read it from the record. */
  #fetch (id: string, waiter: Waiter): void {
    this.#config.storage.getStatus(this.#config.name, id).then(record => this.#fetched(id, waiter, record), (err: Error) => this.#finish(id, waiter, undefined, err))
  }

  /** Finishes a wait from a terminal record (or none: expired or removed, which only a cancel does early). */
  #fetched (id: string, waiter: Waiter, record: JobRecord | null): void {
    if (record?.state === 'completed') this.#finish(id, waiter, record.result ?? Buffer.alloc(0), undefined)
    else if (record?.state === 'failed') this.#finish(id, waiter, undefined, this.#failure(id, record.error ?? Buffer.alloc(0)))
    else this.#finish(id, waiter, undefined, new JobCancelledError(id))
  }

  #failure (id: string, error: Buffer): JobFailedError {
    return new JobFailedError(id, error.length > 0 ? error.toString() : 'Job failed')
  }

  /** A stored result, decoded; a serde that cannot decode it throws SerdeError. */
  #decodeResult (id: string, bytes: Buffer): TResult {
    try {
      return this.#config.resultSerde.deserialize(bytes)
    } catch (err) {
      throw new SerdeError(`Cannot deserialize the result of job '${id}' (stored by another resultSerde?): ${safeMessage(err)}`, err)
    }
  }

  /** Settles `waiter` and every waiter chained after it, once; decodes the result once. */
  #finish (id: string, waiter: Waiter, result: Buffer | undefined, error: Error | undefined): void {
    if (this.#waiters.get(id) === waiter) this.#waiters.delete(id)
    let value: TResult | undefined
    if (error === undefined && result !== undefined) {
      try {
        value = this.#decodeResult(id, result)
      } catch (err) {
        error = err as Error
      }
    }
    for (let w: Waiter | undefined = waiter; w !== undefined; w = w.next) {
      if (w.timer === undefined) continue // already settled (timed out)
      clearTimeout(w.timer)
      w.timer = undefined
      if (error !== undefined) w.reject(error)
      else w.resolve(value)
    }
  }

  /** A waiter's timer ran out (arguments passed by setTimeout: no closure per call). */
  readonly #timeout = (id: string, waiter: Waiter, timeout: number): void => {
    waiter.timer = undefined
    waiter.reject(new TimeoutError(id, timeout))
    // Unlink it; drop the chain's map entry when nobody else waits on this id.
    let head = this.#waiters.get(id)
    if (head === waiter) head = waiter.next
    else for (let w = head; w !== undefined; w = w.next) if (w.next === waiter) w.next = waiter.next
    if (head === undefined) this.#waiters.delete(id)
    else this.#waiters.set(id, head)
  }

  /** Pending `enqueueAndWait` calls (observability; also what the leak test checks). */
  get waiting (): number { return this.#waiters.size }
}
