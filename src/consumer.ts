import { hostname } from 'node:os'
import { maxValueBytes, storable, tooLarge, unavailable } from './bytes.ts'
import { InvalidArgumentError, JobCancelledError, MaxRetriesError, QueueClosedError, ResultTTLError, SerdeError, StorageError, TimeoutError, safeMessage } from './errors.ts'
import { Emitter, reportError } from './emitter.ts'
import { failureGroup } from './failure-groups.ts'
import { componentLogger, Lifecycle, type Defer } from './lifecycle.ts'
import { encodeError, toError } from './job-error.ts'
import { probe, type AttemptOutcome, type AttemptProbe } from './instrument.ts'
import { backoffDelay, resolveConfig, type ResolvedConfig } from './options.ts'
import { replacement } from './refusal.ts'
import { RunLimits, type LimitedJob } from './run-limits.ts'
import type { ClaimedJob, Notice, Settlement } from './storage/types.ts'
import type { AfterExecutionContext, AsyncJobHandler, ConsumerConfig, Job, JobHandler, Logger, QueueEvents } from './types.ts'

/** Why a running job's signal was aborted; decides how the job is settled. */
type AbortKind = 'cancel' | 'lease' | 'shutdown' | 'timeout'

/** The job object handed to the handler; the AbortController is made only if `signal` is read. */
class RunningJob<TPayload> implements Job<TPayload>, LimitedJob {
  readonly id: string
  readonly payload: TPayload
  readonly attempts: number
  readonly maxAttempts: number
  readonly claimed: ClaimedJob
  #controller: AbortController | undefined
  aborted: AbortKind | undefined
  /** Set once the job's settlement is decided; later handler outcomes are ignored. */
  done = false
  /** Epoch ms when the handler started. */
  readonly startedAt: number
  /** When metrics or tracing are on (see instrument.ts): the probe's start mark (else 0), and its probe. */
  begun = 0
  probe: AttemptProbe | undefined = undefined
  readonly deadline: number
  readonly ownLimit: boolean
  limitTimer: ReturnType<typeof setTimeout> | undefined = undefined

  /** @param limit the consumer's `visibilityTimeout`: the run-time limit unless the job has its own. */
  constructor (claimed: ClaimedJob, payload: TPayload, startedAt: number, limit: number) {
    this.id = claimed.id
    this.payload = payload
    this.attempts = claimed.attempts
    this.maxAttempts = claimed.maxAttempts
    this.claimed = claimed
    this.startedAt = startedAt
    const own = claimed.runTimeout ?? 0
    this.ownLimit = own > 0
    this.deadline = startedAt + (own > 0 ? own : limit)
  }

  get signal (): AbortSignal {
    this.#controller ??= new AbortController()
    return this.#controller.signal
  }

  abort (kind: AbortKind, reason: Error): void {
    if (this.aborted !== undefined) return
    this.aborted = kind
    this.#controller?.abort(reason)
  }
}

/**
 * Events to emit once their settlements are stored: flat quads (event, id, value, attempt), one
 * per settlement in the same order, no array per job. `undefined`: a settlement announced by nothing.
 */
type AnnouncedEvent = 'completed' | 'failed' | 'failing' | 'requeued' | 'cancelled' | undefined
type Announcements = unknown[]

/** What an announced event means as an attempt's outcome. */
const OUTCOMES: Readonly<Record<string, AttemptOutcome>> = { completed: 'completed', failed: 'failed', failing: 'retry', requeued: 'released', cancelled: 'cancelled' }

const LEASE_LOST = 'The job lease was lost (the job was recovered by the reaper); its outcome is discarded'
const SHUTDOWN = 'The consumer is shutting down; the job goes back to the queue'
const OVERRUN = 'The job ran past its run-time limit (visibilityTimeout): its signal is aborted, its slot freed and its lease left to expire, so the reaper recovers it as stalled; its outcome is discarded'
/** Pause after a failed storage call before the loop tries again, in ms. */
const RETRY_PAUSE = 1000
/** Settle-and-claim calls a consumer keeps in flight. */
const MAX_SETTLING = 2
/** Concurrency from which each call claims only its share of the slots (see `#batch`). */
const SPLIT_CONCURRENCY = 8

/**
 * The consuming side: claims jobs and runs the handler with bounded concurrency. Finished jobs
 * are settled in batches together with the claim of the next jobs (one storage round trip for
 * both); when the queue is empty it blocks in the storage instead of polling. Leases are
 * extended while handlers run.
 *
 * @example
 * const consumer = new Consumer({ storage, concurrency: 10 })
 * consumer.execute(async job => resize(job.payload))
 * await consumer.start()
 */
export class Consumer<TPayload = unknown, TResult = unknown> extends Emitter<QueueEvents<TResult>> {
  readonly #config: ResolvedConfig<TPayload, TResult>
  readonly #events: Emitter<QueueEvents<TResult>>
  readonly #running = new Map<string, RunningJob<TPayload>>()
  readonly #limits = new RunLimits<RunningJob<TPayload>>(this.#running, job => this.#overrun(job))
  /** Settlements that replace one the storage refused (see `#isolate`). */
  readonly #replaced = new WeakSet<Settlement>()
  readonly #logger: Logger
  readonly #lifecycle: Lifecycle
  #handler: AsyncJobHandler<TPayload, TResult> | undefined
  /** Started and not stopping: claims jobs. */
  #open = false
  #settlements: Settlement[] = []
  /** Jobs claimed ahead of free slots (`prefetch`), oldest first, each with its probe mark. */
  #ahead: Array<{ claimed: ClaimedJob, begun: number }> = []
  #announcements: Announcements = []
  /** Settle-and-claim calls in flight (at most {@link MAX_SETTLING}). */
  #settling = 0
  #blocking = false
  /** Slots promised to the claims of outstanding storage calls. */
  #reserved = 0
  /** The last claim returned fewer jobs than asked: block instead of asking again. */
  #empty = false
  #paused = false
  #pauseTimer: ReturnType<typeof setTimeout> | undefined
  #pumpScheduled = false
  /** Inside {@link Consumer.#begin}: jobs of its batch may not be running yet. */
  #beginning = false
  #blockAbort = new AbortController()
  /** Epoch ms when this consumer last started, as its worker-registry entry says. */
  #startedAt = 0
  /** Called when the last running job finishes (used by stop). */
  #onDrained: (() => void) | undefined
  /** Called when no storage call is outstanding and nothing waits to be settled (used by stop). */
  #onQuiet: (() => void) | undefined

  /** @param events internal: where events go (a Queue passes itself). */
  constructor (config: ConsumerConfig<TPayload, TResult>, events?: Emitter<QueueEvents<TResult>>) {
    super()
    // A Queue passes its own configuration: the Queue's option names apply.
    this.#config = resolveConfig<TPayload, TResult>(config, events === undefined ? 'Consumer' : 'Queue')
    this.#events = events ?? this
    const { workerId, concurrency, shutdownTimeout, stopTimeout } = this.#config
    this.#logger = componentLogger(this.#config.logger, { component: 'consumer', workerId })
    this.#lifecycle = new Lifecycle({
      name: 'consumer',
      logger: this.#logger,
      details: { concurrency },
      stopTimeout: shutdownTimeout + stopTimeout,
      report: (err, msg) => this.#report(err, msg),
      start: defer => this.#start(defer)
    })
  }

  /** This worker's id (the `workerId` option, or a random UUID): the holder of its jobs' leases. */
  get workerId (): string { return this.#config.workerId }

  /** Sets the handler: `async job => result`, or callback style `(job, done) => ...`. */
  execute (handler: JobHandler<TPayload, TResult>): void {
    if (typeof handler !== 'function') throw new InvalidArgumentError(`Expected \`handler\` to be a function, got ${typeof handler}`)
    this.#handler = handler.length >= 2 ? fromCallback(handler as any) : handler as AsyncJobHandler<TPayload, TResult>
    if (this.#open) this.#pump()
  }

  /**
   * Connects and starts claiming jobs (once a handler is set). Restartable: after `stop()` it
   * connects and claims again. See {@link Lifecycle} for concurrent calls; a failed start is not
   * remembered.
   */
  start (): Promise<void> {
    return this.#lifecycle.start()
  }

  async #start (defer: Defer): Promise<void> {
    const { storage, name, visibilityTimeout } = this.#config
    await storage.connect()
    defer(() => storage.disconnect(), 'the storage to disconnect')
    defer(await storage.subscribe(name, this.#onNotice, 'abort'), 'the unsubscribe')
    this.#startedAt = Date.now()
    await this.#register(visibilityTimeout)
    defer(() => this.#register(0), 'leaving the worker registry')
    // Renew all leases in one call, three times per lease period so one late beat is harmless;
    // the worker-registry entry lives a lease period, so it outlives two missed beats too.
    const heartbeat = setInterval(() => {
      this.#renewLeases()
      this.#register(visibilityTimeout).catch(() => {})
    }, Math.max(1, Math.floor(visibilityTimeout / 3)))
    heartbeat.unref()
    defer(() => clearInterval(heartbeat))
    this.#blockAbort = new AbortController()
    this.#empty = false
    this.#open = true
    defer(() => this.#close(), 'running jobs, and the settle and claim calls in flight')
    this.#pump()
  }

  /**
   * Stops claiming, waits up to `shutdownTimeout` ms for running jobs, then aborts the rest and
   * hands them back to the queue. Idempotent: every call returns the same promise.
   *
   * Called from inside a handler (awaited there, the job cannot finish before it resolves), it
   * resolves as soon as the consumer stops claiming; the stop goes on, and the calling job, once
   * its handler returns, is settled like the others.
   */
  stop (): Promise<void> {
    return calledFromHandler() ? this.#lifecycle.stopSoon() : this.#lifecycle.stop()
  }

  /** The first undo of a stop: stop claiming, let running jobs finish, hand the rest back. */
  async #close (): Promise<void> {
    this.#open = false
    // Jobs claimed ahead go back to the queue at once, for other workers.
    for (const { claimed } of this.#ahead) {
      this.#settlements.push({ type: 'release', id: claimed.id, attempt: claimed.attempts })
      this.#announcements.push(undefined, claimed.id, undefined, 0)
    }
    this.#ahead = []
    this.#pump()
    this.#blockAbort.abort()
    clearTimeout(this.#pauseTimer)
    this.#pauseTimer = undefined
    this.#paused = false
    if (this.#running.size > 0) await this.#drain(this.#config.shutdownTimeout)
    if (this.#running.size > 0) this.#logger.warn({ running: this.#running.size }, 'shutdownTimeout passed: aborting the running jobs and handing them back')
    for (const job of this.#running.values()) {
      job.abort('shutdown', new QueueClosedError(SHUTDOWN))
      this.#settle(job, { type: 'release', id: job.id, attempt: job.attempts }, 'requeued')
    }
    this.#limits.stop()
    await this.#idle()
  }

  /** Jobs being run right now. */
  get running (): number { return this.#running.size }

  /** Resolves when no job runs, or after `timeout` ms. */
  #drain (timeout: number): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(() => {
        this.#onDrained = undefined
        resolve()
      }, timeout)
      this.#onDrained = () => {
        clearTimeout(timer)
        this.#onDrained = undefined
        resolve()
      }
    })
  }

  /** Resolves when no storage call is outstanding and nothing waits to be settled. */
  async #idle (): Promise<void> {
    this.#pump()
    while (this.#busy()) await new Promise<void>(resolve => { this.#onQuiet = resolve })
  }

  #busy (): boolean {
    return this.#settling > 0 || this.#blocking || this.#settlements.length > 0
  }

  #quiet (): void {
    if (this.#busy()) return
    const onQuiet = this.#onQuiet
    this.#onQuiet = undefined
    onQuiet?.()
  }

  /**
   * Most jobs one settle-and-claim call claims: half the slots from {@link SPLIT_CONCURRENCY} up,
   * so two calls can overlap; every slot below that, where batches are too small for the overlap
   * to matter and whole claims keep every slot busy.
   */
  get #batch (): number {
    const slots = this.#config.concurrency + this.#config.prefetch
    return slots >= SPLIT_CONCURRENCY ? Math.ceil(slots / MAX_SETTLING) : slots
  }

  /**
   * The loop: settle-and-claim calls, or one blocking claim when the queue is empty. Two calls may
   * be in flight, so that the handlers of one batch run while the storage works on the other
   * (with one call at a time they would take turns: measured on Redis, 49,000 jobs/s against
   * 64,000 with two).
   */
  #pump (): void {
    if (this.#ahead.length > 0 && this.#running.size < this.#config.concurrency && this.#open && !this.#beginning) this.#startAhead()
    while (this.#settling < MAX_SETTLING && !this.#paused && this.#handler !== undefined) {
      const open = this.#open
      const free = open ? this.#config.concurrency + this.#config.prefetch - this.#running.size - this.#ahead.length - this.#reserved : 0
      if (this.#settlements.length === 0 && (free <= 0 || this.#empty)) {
        if (open && free > 0 && !this.#blocking && this.#settling === 0) this.#block(free)
        else this.#quiet()
        return
      }
      this.#send(Math.min(free, this.#batch))
    }
  }

  /**
   * One settle-and-claim call: up to a batch of the settlements gathered so far, and up to `max`
   * next jobs. Capping settlements like claims keeps the two calls in flight alike: one call
   * with every settlement and one with none fall into lockstep, the storage and the handlers
   * taking turns again.
   */
  #send (max: number): void {
    let settlements = this.#settlements
    let announcements = this.#announcements
    const batch = this.#batch
    if (settlements.length > batch) {
      this.#settlements = settlements.slice(batch)
      this.#announcements = announcements.slice(4 * batch)
      settlements = settlements.slice(0, batch)
      announcements = announcements.slice(0, 4 * batch)
    } else {
      this.#settlements = []
      this.#announcements = []
    }
    this.#call(settlements, announcements, max)
  }

  /** One settle call: `settlements` (their events are emitted once stored) and a claim of up to `max` jobs. */
  #call (settlements: Settlement[], announcements: Announcements, max: number): void {
    const { storage, name, workerId, visibilityTimeout } = this.#config
    this.#settling++
    this.#reserved += max
    storage.settle(name, workerId, settlements, { max, leaseMs: visibilityTimeout }).then(settled => {
      // A backend predating issue 9 answers the bare array: refusals unknown, all announced.
      const jobs = Array.isArray(settled) ? settled : settled.jobs
      this.#settling--
      this.#reserved -= max
      this.#announce(announcements, Array.isArray(settled) ? undefined : settled.refused)
      if (max > 0) this.#empty = jobs.length < max
      this.#begin(jobs)
      this.#pump()
    }, (err: Error) => {
      this.#settling--
      this.#reserved -= max
      if (settlements.length > 0 && !unavailable(err)) {
        this.#isolate(settlements, announcements, err)
        this.#pump()
        return
      }
      // Keep the settlements: they are retried (fencing makes a repeat harmless).
      this.#settlements = settlements.concat(this.#settlements)
      this.#announcements = announcements.concat(this.#announcements)
      this.#pause(err, 'Settling jobs failed')
    })
  }

  /**
   * The storage refused a settle call for something in it, not for being unreachable: a batch is
   * never hostage to one element. Its halves go apart (without claims) until the settlement at
   * fault is alone; that one is replaced by a failure the storage can store (see
   * {@link replacement}), and the job fails with the storage's reason. A replacement refused in
   * turn is dropped: the job's lease expires and the reaper recovers it.
   */
  #isolate (settlements: Settlement[], announcements: Announcements, err: Error): void {
    if (settlements.length > 1) {
      const half = Math.ceil(settlements.length / 2)
      this.#call(settlements.slice(0, half), announcements.slice(0, 4 * half), 0)
      this.#call(settlements.slice(half), announcements.slice(4 * half), 0)
      return
    }
    const [settlement] = settlements
    const id = settlement.id
    const substitute = this.#replaced.has(settlement) ? undefined : replacement(settlement, err)
    if (substitute === undefined) {
      this.#report(new StorageError(`The storage refused the ${settlement.type} of job '${id}' (${safeMessage(err)}); its lease will expire and the reaper recover it`, err, { retryable: false }), 'Settling a job failed')
      return
    }
    this.#logger.warn({ id, err }, `the storage refused the ${settlement.type} of a job; it fails instead`)
    this.#replaced.add(substitute.settlement)
    this.#settlements.push(substitute.settlement)
    // A refused result fails the job; a refused error keeps its event (the error is only too large to store).
    if (settlement.type === 'complete') this.#announcements.push('failed', id, new MaxRetriesError(id, settlement.attempt, substitute.error), settlement.attempt)
    else this.#announcements.push(...announcements)
  }

  #block (max: number): void {
    const { storage, name, workerId, visibilityTimeout, blockMs } = this.#config
    this.#blocking = true
    this.#reserved += max
    storage.claim(name, workerId, { max, leaseMs: visibilityTimeout, blockMs, signal: this.#blockAbort.signal }).then(jobs => {
      this.#blocking = false
      this.#reserved -= max
      // Fewer than asked: nothing more was ready, so wait again (a blocking claim returns at once
      // when jobs are ready) rather than probing with a settle call.
      this.#empty = jobs.length < max
      this.#begin(jobs)
      this.#pump()
    }, (err: Error) => {
      this.#blocking = false
      this.#reserved -= max
      this.#pause(err, 'Claiming jobs failed')
    })
  }

  /** After a storage failure: report it, wait a moment, carry on (the storage may reconnect). */
  #pause (err: Error, msg: string): void {
    this.#report(err, msg)
    if (!this.#open) {
      // Shutting down with the storage failing: give up on these settlements. The jobs stay
      // leased to us, so the reaper recovers them once the leases expire; nothing is lost.
      this.#settlements = []
      this.#announcements = []
      this.#quiet()
      return
    }
    this.#paused = true
    // Not unref'd: a started consumer keeps its process alive while the storage is down (its
    // connections may all be gone), until stop().
    this.#pauseTimer = setTimeout(() => {
      this.#pauseTimer = undefined
      this.#paused = false
      this.#pump()
    }, RETRY_PAUSE)
  }

  #begin (jobs: ClaimedJob[]): void {
    // One clock read per batch: the jobs start together.
    const now = jobs.length > 0 ? Date.now() : 0
    const observer = probe
    const begun = observer !== undefined && jobs.length > 0 && this.#open ? observer.claimed(this.#config.name, jobs, now) : 0
    this.#beginning = true
    try {
      for (let i = 0; i < jobs.length; i++) {
        const claimed = jobs[i]
        // Claimed while stopping (a blocking claim that raced stop): hand it straight back.
        if (!this.#open) {
          this.#settlements.push({ type: 'release', id: claimed.id, attempt: claimed.attempts })
          this.#announcements.push(undefined, claimed.id, undefined, 0)
          continue
        }
        // Every slot busy: the job waits here, leased (prefetch).
        if (this.#running.size >= this.#config.concurrency) this.#ahead.push({ claimed, begun })
        else this.#run(claimed, now, begun)
      }
    } finally {
      this.#beginning = false
    }
  }

  /** Runs jobs claimed ahead, as many as there are free slots. */
  #startAhead (): void {
    const now = Date.now()
    this.#beginning = true
    try {
      while (this.#ahead.length > 0 && this.#running.size < this.#config.concurrency) {
        const { claimed, begun } = this.#ahead.shift() as { claimed: ClaimedJob, begun: number }
        this.#run(claimed, now, begun)
      }
    } finally {
      this.#beginning = false
    }
  }

  /** Removes a job claimed ahead and answers it (undefined: not one). */
  #takeAhead (id: string): ClaimedJob | undefined {
    const i = this.#ahead.findIndex(a => a.claimed.id === id)
    if (i < 0) return undefined
    const [{ claimed }] = this.#ahead.splice(i, 1)
    return claimed
  }

  /** A job claimed ahead whose abort was requested: it never runs, it is settled cancelled. */
  #cancelAhead (id: string): void {
    const claimed = this.#takeAhead(id)
    if (claimed === undefined) return
    this.#settlements.push({ type: 'cancel', id, attempt: claimed.attempts, ttl: claimed.resultTTL })
    this.#announcements.push('cancelled', id, undefined, claimed.attempts)
    this.#schedulePump()
  }

  /** `begun`: the probe's start mark of its batch, 0 when not instrumented. */
  #run (claimed: ClaimedJob, now: number, begun: number): void {
    let payload: TPayload
    try {
      payload = this.#config.payloadSerde.deserialize(claimed.payload)
    } catch (err) {
      // Undecodable bytes will not decode on a retry either: fail at once.
      const error = new SerdeError(`Cannot deserialize the payload of job '${claimed.id}' (enqueued with another payloadSerde?): ${safeMessage(err)}`, err)
      this.#settlements.push({ type: 'fail', id: claimed.id, attempt: claimed.attempts, error: encodeError(error), ttl: claimed.resultTTL, group: failureGroup(error) })
      this.#announcements.push('failed', claimed.id, new MaxRetriesError(claimed.id, claimed.attempts, error), 0)
      if (begun !== 0) probe?.decided(this.#config.name, 'failed', begun)
      this.#schedulePump()
      return
    }
    const job = new RunningJob<TPayload>(claimed, payload, now, this.#config.visibilityTimeout)
    if (begun !== 0) {
      job.begun = begun
      job.probe = probe?.attempt(this.#config.name, claimed, this.#config.workerId)
    }
    this.#running.set(job.id, job)
    this.#limits.watch(job)
    let out: Promise<TResult> | TResult
    let thenable: boolean
    try {
      const handler = this.#handler as AsyncJobHandler<TPayload, TResult>
      out = job.probe === undefined ? handler(job) : job.probe.run(handler, job)
      // Inside the try: a returned object whose `then` getter throws fails the attempt too.
      thenable = out !== null && typeof (out as Promise<TResult>)?.then === 'function'
    } catch (err) {
      this.#failed(job, err)
      return
    }
    if (thenable) this.#settleWhenDone(job, out as Promise<TResult>).catch(this.#onSettleError)
    else this.#succeeded(job, out as TResult)
  }

  readonly #onSettleError = (err: Error): void => this.#report(err, 'Settling a job failed')

  /** Waits for a handler's promise (one async step rather than two closures per job). */
  async #settleWhenDone (job: RunningJob<TPayload>, out: Promise<TResult>): Promise<void> {
    let value: TResult
    try {
      value = await out
    } catch (err) {
      this.#failed(job, err)
      return
    }
    try {
      this.#succeeded(job, value)
    } catch (err) {
      // Whatever went wrong on the way to storing the outcome costs this job, never its slot.
      if (!job.done) this.#failed(job, err)
      else throw err
    }
  }

  #succeeded (job: RunningJob<TPayload>, value: TResult): void {
    if (this.#claim(job)) return
    if (this.#config.afterExecution !== undefined) {
      this.#afterExecution(job, this.#context(job, 'completed', value, undefined))
      return
    }
    this.#complete(job, value, job.claimed.resultTTL)
  }

  #complete (job: RunningJob<TPayload>, value: TResult | undefined, ttl: number): void {
    let result: Buffer | Error
    try {
      result = storable(this.#config.resultSerde.serialize(value as TResult), maxValueBytes(this.#config.storage), `The result of job '${job.id}'`)
    } catch (err) {
      result = new SerdeError(`Cannot serialize the result of job '${job.id}': ${safeMessage(err)}`, err)
    }
    // No bytes, or too many: no retry can help.
    if (result instanceof Error) this.#fail(job, result, ttl)
    else this.#settle(job, { type: 'complete', id: job.id, attempt: job.attempts, result, ttl }, 'completed', value)
  }

  /** The attempt failed with `reason`, whatever was thrown: retry it, or fail the job. */
  #failed (job: RunningJob<TPayload>, reason: unknown): void {
    if (this.#claim(job)) return
    const error = toError(reason)
    if (job.attempts < job.maxAttempts) {
      const delay = backoffDelay(this.#config.backoff, job.attempts, error, Math.random, this.#logger)
      this.#settle(job, { type: 'retry', id: job.id, attempt: job.attempts, error: this.#encodeError(job.id, error), delay }, 'failing', error)
      return
    }
    if (this.#config.afterExecution !== undefined) {
      this.#afterExecution(job, this.#context(job, 'failed', undefined, error))
      return
    }
    this.#fail(job, error, job.claimed.resultTTL)
  }

  /** Stores the job's final failure; `failed` carries a MaxRetriesError whose `lastError` is `error`. */
  #fail (job: RunningJob<TPayload>, error: Error, ttl: number): void {
    this.#settle(job, { type: 'fail', id: job.id, attempt: job.attempts, error: this.#encodeError(job.id, error), ttl, group: failureGroup(error) }, 'failed', new MaxRetriesError(job.id, job.attempts, error))
  }

  /** The stored form of a job's error: its encoding, or a shorter one when larger than the storage stores. */
  #encodeError (id: string, error: Error): Buffer {
    const bytes = encodeError(error)
    const max = maxValueBytes(this.#config.storage)
    return bytes.length <= max ? bytes : encodeError(tooLarge(`The error of job '${id}' (${safeMessage(error).slice(0, 200)})`, bytes.length, max))
  }

  /**
   * Marks the handler's outcome as seen. True when it must be ignored: seen before, the lease
   * was lost, shutdown already handed the job back, or the job was cancelled (settled here).
   */
  #claim (job: RunningJob<TPayload>): boolean {
    if (job.done) return true
    if (job.aborted === 'cancel') {
      this.#settle(job, { type: 'cancel', id: job.id, attempt: job.attempts, ttl: job.claimed.resultTTL }, 'cancelled')
      return true
    }
    return false
  }

  #context (job: RunningJob<TPayload>, status: 'completed' | 'failed', result: TResult | undefined, error: Error | undefined): AfterExecutionContext<TPayload, TResult> {
    const finishedAt = Date.now()
    return {
      id: job.id,
      payload: job.payload,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      createdAt: job.claimed.createdAt,
      status,
      ...(status === 'completed' ? { result } : { error }),
      ttl: job.claimed.resultTTL,
      workerId: this.#config.workerId,
      startedAt: job.startedAt,
      finishedAt,
      durationMs: finishedAt - job.startedAt
    }
  }

  /**
   * Runs the hook, then stores what it left: `context.result` for a completed job, `context.error`
   * (or the original error if it removed it) for a failed one, with `context.ttl`. A hook that
   * throws, or leaves an invalid ttl, is reported (`error` event) and the original ttl applies.
   */
  #afterExecution (job: RunningJob<TPayload>, context: AfterExecutionContext<TPayload, TResult>): void {
    job.done = true // the hook is async: no second outcome may slip in meanwhile
    const original = { status: context.status, ttl: context.ttl, error: context.error }
    const finish = (): void => {
      const badTTL = !Number.isSafeInteger(context.ttl) || context.ttl < 1
      const ttl = badTTL ? original.ttl : context.ttl
      job.done = false
      if (original.status === 'failed') this.#fail(job, toError(context.error ?? original.error), ttl)
      else this.#complete(job, context.result, ttl)
      // Reported once the outcome is on its way: a report that throws (an `error` listener) must not strand the job.
      if (badTTL) this.#report(new ResultTTLError(`${String(context.ttl)} from afterExecution for job '${job.id}' (the job's own applies)`), 'afterExecution left an invalid ttl')
    }
    Promise.resolve().then(() => (this.#config.afterExecution as (c: typeof context) => unknown)(context)).then(finish, err => {
      context.ttl = original.ttl
      try {
        finish()
      } finally {
        this.#report(toError(err), 'afterExecution hook failed')
      }
    })
  }

  #settle (job: RunningJob<TPayload>, settlement: Settlement, event: AnnouncedEvent, value?: unknown): void {
    job.done = true
    this.#running.delete(job.id)
    if (job.limitTimer !== undefined) this.#limits.forget(job)
    if (job.begun !== 0) this.#decided(job, event === undefined ? 'released' : OUTCOMES[event], value)
    this.#settlements.push(settlement)
    this.#announcements.push(event, job.id, value, job.attempts)
    if (this.#running.size === 0) this.#onDrained?.()
    this.#schedulePump()
  }

  /**
   * Pumps once the current burst of completions is over: jobs claimed together tend to finish in
   * the same tick, and settling the first alone would split every batch into 1 + the rest.
   */
  #schedulePump (): void {
    if (this.#pumpScheduled) return
    // No job left running (outside #begin, whose batch is not all running yet): no completion can
    // join this one, so waiting a tick would only delay it (a sequential call's settle).
    if (this.#running.size === 0 && !this.#beginning) {
      this.#pump()
      return
    }
    this.#pumpScheduled = true
    process.nextTick(this.#scheduledPump)
  }

  readonly #scheduledPump = (): void => {
    this.#pumpScheduled = false
    this.#pump()
  }

  /** Emits the events of stored settlements; `refused` (indexes of settlements fencing refused) are not announced. */
  #announce (announcements: Announcements, refused: readonly number[] | undefined): void {
    const events = this.#events
    const observer = probe
    let r = 0
    for (let i = 0; i < announcements.length; i += 4) {
      const event = announcements[i] as AnnouncedEvent
      if (refused !== undefined && r < refused.length && refused[r] === i / 4) {
        r++
        continue
      }
      if (event === undefined) continue
      if (observer !== undefined) observer.stored(this.#config.name, OUTCOMES[event])
      const id = announcements[i + 1] as string
      const value = announcements[i + 2]
      if (event === 'completed') {
        events.emit(event, id, value as TResult)
      } else if (event === 'failing') {
        const attempt = announcements[i + 3] as number
        this.#logger.warn({ id, attempt, err: value }, 'job attempt failed; it will be retried')
        events.emit(event, id, value as Error, attempt)
      } else if (event === 'failed') {
        this.#logger.error({ id, attempts: announcements[i + 3], err: value }, 'job failed')
        events.emit(event, id, value as Error)
      } else {
        events.emit(event, id)
      }
    }
  }

  /** Reports an instrumented attempt's outcome as its worker decided it. */
  #decided (job: RunningJob<TPayload>, outcome: AttemptOutcome, value?: unknown): void {
    probe?.decided(this.#config.name, outcome, job.begun)
    job.probe?.end(outcome, value)
  }

  readonly #onNotice = (notice: Notice): void => {
    if (notice.type !== 'abort') return
    const job = this.#running.get(notice.id)
    if (job !== undefined) job.abort('cancel', new JobCancelledError(notice.id))
    else if (this.#ahead.length > 0) this.#cancelAhead(notice.id)
  }

  /** Announces this consumer in the queue's worker registry for `ttl` ms (0: leaves it). Failures are reported, not thrown. */
  async #register (ttl: number): Promise<void> {
    const { storage, name, workerId, concurrency } = this.#config
    if (storage.heartbeat === undefined) return
    const worker = { id: workerId, host: hostname(), pid: process.pid, concurrency, running: this.#running.size, startedAt: this.#startedAt }
    await storage.heartbeat(name, worker, ttl).catch((err: Error) => reportError(this.#events, this.#config.logger, err, 'Worker heartbeat failed'))
  }

  #renewLeases (): void {
    if (this.#running.size === 0 && this.#ahead.length === 0) return
    const { storage, name, workerId, visibilityTimeout } = this.#config
    const ids = [...this.#running.keys()]
    for (const { claimed } of this.#ahead) ids.push(claimed.id)
    storage.extendLeases(name, workerId, ids, visibilityTimeout).then(({ lost, aborted }) => {
      // A cancel request whose notice we missed (e.g. across a reconnect) is seen here at the latest.
      for (const id of aborted) {
        const job = this.#running.get(id)
        if (job !== undefined) job.abort('cancel', new JobCancelledError(id))
        else if (this.#ahead.length > 0) this.#cancelAhead(id)
      }
      for (const id of lost) {
        const job = this.#running.get(id)
        // Claimed ahead and recovered by the reaper meanwhile: someone else runs it.
        if (job === undefined && this.#ahead.length > 0 && this.#takeAhead(id) !== undefined) continue
        if (job === undefined || job.done) continue
        // Someone else owns the job now (reaped as stalled): stop and drop our outcome.
        this.#drop(job, 'lease', new QueueClosedError(LEASE_LOST))
        this.#logger.warn({ id }, LEASE_LOST)
      }
      if (lost.length > 0) this.#pump()
    }, (err: Error) => this.#report(err, 'Extending leases failed'))
  }

  /**
   * The job ran past its run-time limit (issue 10 item 3): abort its signal, free its slot, and
   * let its lease expire now instead of renewing it, so the reaper's next pass recovers it as
   * stalled (retried, or failed when out of stalls or attempts). Whatever the handler does later
   * is ignored. If the lease cannot be cut short, it expires within `visibilityTimeout` anyway.
   */
  #overrun (job: RunningJob<TPayload>): void {
    if (job.done) return
    const { storage, name, workerId, visibilityTimeout } = this.#config
    const limit = job.deadline - job.startedAt
    this.#drop(job, 'timeout', new TimeoutError(job.id, limit))
    this.#logger.warn({ id: job.id, attempt: job.attempts, limit, ownLimit: job.ownLimit, visibilityTimeout }, OVERRUN)
    storage.extendLeases(name, workerId, [job.id], 0).catch((err: Error) => this.#report(err, 'Ending the lease of a job past its run-time limit failed'))
    this.#schedulePump()
  }

  /** Ends a running job without a settlement: its signal aborts, its slot is free, its outcome will be ignored. */
  #drop (job: RunningJob<TPayload>, kind: AbortKind, reason: Error): void {
    job.abort(kind, reason)
    job.done = true
    this.#running.delete(job.id)
    this.#limits.forget(job)
    if (job.begun !== 0) this.#decided(job, 'lost', reason)
    if (this.#running.size === 0) this.#onDrained?.()
    if (this.#ahead.length > 0) this.#schedulePump()
  }

  #report (err: Error, msg: string): void {
    reportError(this.#events, this.#logger, err, msg)
  }
}

/**
 * Adapts a callback-style handler to a promise-returning one. The first of `done(err)`, a throw,
 * or the rejection of a promise the handler returns (an `async (job, done) => ...` that throws)
 * decides the outcome; a returned promise that resolves does not (`done` does).
 */
function fromCallback<TPayload, TResult> (handler: (job: Job<TPayload>, done: (err: Error | null | undefined, result?: TResult) => void) => unknown): AsyncJobHandler<TPayload, TResult> {
  return job => new Promise<TResult>((resolve, reject) => {
    const out = handler(job, (err, result) => {
      if (err !== null && err !== undefined) reject(err)
      else resolve(result as TResult)
    })
    if (out !== null && typeof (out as Promise<unknown>)?.then === 'function') (out as Promise<unknown>).then(undefined, reject)
  })
}

/** Frames of the consumer that run a handler: `#run` calls it, `#settleWhenDone` awaits its promise. */
const HANDLER_FRAME = /^\s+at (?:async )?(?:\S+\.)?#(?:run|settleWhenDone) /m

/**
 * True when called from inside a job handler of a relayq consumer: from its synchronous part, or
 * from code that its returned promise awaits (V8's async stack traces show the consumer frame
 * that awaits the handler). Read only by `stop()`, never on the hot path. A handler that detaches
 * the call (`setTimeout`, an un-awaited `.then`) is not seen: its stop then behaves as any other.
 */
export function calledFromHandler (): boolean {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 100
  const { stack } = new Error()
  Error.stackTraceLimit = limit
  return stack !== undefined && HANDLER_FRAME.test(stack)
}
