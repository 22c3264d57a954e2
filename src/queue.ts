import { calledFromHandler, Consumer } from './consumer.ts'
import { Emitter, reportError } from './emitter.ts'
import { componentLogger, Lifecycle } from './lifecycle.ts'
import { pickOptions, resolveConfig } from './options.ts'
import { Producer, type BulkJob } from './producer.ts'
import { Reaper } from './reaper.ts'
import type {
  AsyncJobHandler, CancelResult, EnqueueAndWaitOptions, EnqueueOptions, EnqueueResult, JobHandler, Logger, MessageStatus, QueueConfig,
  QueueEvents, UpdateResultTTLResult
} from './types.ts'

/**
 * A producer and a consumer (plus, when it consumes, a leader-elected reaper) over one storage.
 *
 * Restartable: `start()` after `stop()` connects and consumes again, as often as wanted. Calls
 * take effect in order (`stop()` during a start stops once started; `start()` during a stop starts
 * again once stopped); a repeated call shares the pending transition; a failed start is not
 * remembered. See the README section "Start, stop and restart".
 *
 * @example
 * const queue = new Queue<{ n: number }, number>({ storage: new MemoryStorage(), concurrency: 10 })
 * queue.execute(async job => job.payload.n * 2)
 * await queue.start()
 * const doubled = await queue.enqueueAndWait('job-1', { n: 21 }, { timeout: 5000 }) // 42
 * await queue.stop()
 */
export class Queue<TPayload = unknown, TResult = unknown> extends Emitter<QueueEvents<TResult>> {
  readonly #producer: Producer<TPayload, TResult>
  readonly #consumer: Consumer<TPayload, TResult>
  readonly #reaper: Reaper | undefined
  readonly #logger: Logger
  readonly #lifecycle: Lifecycle
  #handlerSet = false

  constructor (config: QueueConfig<TPayload, TResult>) {
    super()
    // Each validates the same config in one pass; the first bad option throws here.
    this.#producer = new Producer(config, this)
    this.#consumer = new Consumer(config, this)
    this.#logger = componentLogger(resolveConfig(config, 'Queue').logger, { component: 'queue', workerId: this.#consumer.workerId })
    if (config.reaper !== false) {
      this.#reaper = new Reaper(pickOptions(config, 'Reaper'), true)
      this.#reaper.on('stalled', id => this.emit('stalled', id))
      this.#reaper.on('requeued', id => this.emit('requeued', id))
      this.#reaper.on('failed', (id, err) => this.emit('failed', id, err))
      this.#reaper.on('error', err => { if (this.listenerCount('error') > 0) this.emit('error', err) })
    }
    this.#lifecycle = new Lifecycle({
      name: 'queue',
      logger: this.#logger,
      report: (err, msg) => this.#report(err, msg),
      start: async () => {
        await this.#producer.start()
        if (this.#handlerSet) await this.#consume()
      },
      // Also for a queue never started: its producer may have connected on first use.
      stop: async () => {
        const stopped = await Promise.allSettled([this.#consumer.stop(), this.#reaper?.stop()])
        await this.#producer.stop()
        for (const outcome of stopped) if (outcome.status === 'rejected') throw outcome.reason
      },
      started: () => this.emit('started'),
      stopped: () => this.emit('stopped')
    })
  }

  /**
   * Sets the job handler (`async job => result` or `(job, done) => ...`); the queue consumes once
   * started, or at once if it is. A consumer that fails to start then is reported (`error` event
   * and logger) and tried again by the next `start()`.
   */
  execute (handler: JobHandler<TPayload, TResult>): void {
    this.#consumer.execute(handler as AsyncJobHandler<TPayload, TResult>)
    this.#handlerSet = true
    // A start in progress may have looked for a handler before this one came.
    this.#lifecycle.opening?.then(() => {
      this.#consume().catch((err: Error) => this.#report(err, 'Starting the consumer failed'))
    }, () => {}) // a failed start rejects its own caller
  }

  /**
   * Connects; starts consuming if a handler is set. Emits `started`. On a started queue whose
   * consumer failed to start (see `execute`), tries the consumer again.
   */
  async start (): Promise<void> {
    await this.#lifecycle.start()
    if (this.#handlerSet && this.#lifecycle.started) await this.#consume()
  }

  /** Starts the consumer and the reaper (each at most once while started); if either fails, stops the other. */
  async #consume (): Promise<void> {
    const started = await Promise.allSettled([this.#consumer.start(), this.#reaper?.start()])
    for (const outcome of started) {
      if (outcome.status === 'rejected') {
        await Promise.allSettled([this.#consumer.stop(), this.#reaper?.stop()])
        throw outcome.reason
      }
    }
  }

  /**
   * Stops taking jobs, waits up to `shutdownTimeout` ms for running ones, hands the rest back,
   * rejects pending waits and releases the storage. Emits `stopped`. Idempotent; `start()` starts
   * the queue again.
   *
   * Called from inside a handler (awaited there, its job could not finish before the stop does),
   * it resolves as soon as the stop has begun; the calling job finishes and is stored like the
   * other running jobs, then the storage is released and `stopped` is emitted.
   */
  stop (): Promise<void> {
    return calledFromHandler() ? this.#lifecycle.stopSoon() : this.#lifecycle.stop()
  }

  #report (err: Error, msg: string): void {
    reportError(this, this.#logger, err, msg)
  }

  enqueue (id: string, payload: TPayload, options?: EnqueueOptions): Promise<EnqueueResult<TResult>> {
    return this.#producer.enqueue(id, payload, options)
  }

  enqueueMany (jobs: ReadonlyArray<BulkJob<TPayload>>): Promise<Array<EnqueueResult<TResult>>> {
    return this.#producer.enqueueMany(jobs)
  }

  enqueueAndWait (id: string, payload: TPayload, options?: EnqueueAndWaitOptions): Promise<TResult> {
    return this.#producer.enqueueAndWait(id, payload, options)
  }

  cancel (id: string, options?: { running?: boolean }): Promise<CancelResult> {
    return this.#producer.cancel(id, options)
  }

  getResult (id: string): Promise<TResult | null> {
    return this.#producer.getResult(id)
  }

  getStatus (id: string): Promise<MessageStatus<TResult> | null> {
    return this.#producer.getStatus(id)
  }

  updateResultTTL (id: string, ttl: number): Promise<UpdateResultTTLResult> {
    return this.#producer.updateResultTTL(id, ttl)
  }

  /** Jobs this queue's consumer is running right now. */
  get running (): number { return this.#consumer.running }

  /** Pending `enqueueAndWait` calls. */
  get waiting (): number { return this.#producer.waiting }
}
