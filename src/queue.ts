import { Consumer } from './consumer.ts'
import { Emitter } from './emitter.ts'
import { QueueClosedError } from './errors.ts'
import { pickOptions } from './options.ts'
import { Producer, type BulkJob } from './producer.ts'
import { Reaper } from './reaper.ts'
import type {
  AsyncJobHandler, CancelResult, EnqueueAndWaitOptions, EnqueueOptions, EnqueueResult, JobHandler, MessageStatus, QueueConfig,
  QueueEvents, UpdateResultTTLResult
} from './types.ts'

/**
 * A producer and a consumer (plus, when it consumes, a leader-elected reaper) over one storage.
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
  #handlerSet = false
  #state: 'new' | 'started' | 'stopped' = 'new'
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #consuming: Promise<void> | undefined

  constructor (config: QueueConfig<TPayload, TResult>) {
    super()
    // Both validate the same config in one pass each; the first bad option throws here.
    this.#producer = new Producer(config, this)
    this.#consumer = new Consumer(config, this)
    if (config.reaper !== false) {
      this.#reaper = new Reaper(pickOptions(config, 'Reaper'))
      this.#reaper.on('stalled', id => this.emit('stalled', id))
      this.#reaper.on('requeued', id => this.emit('requeued', id))
      this.#reaper.on('failed', (id, err) => this.emit('failed', id, err))
      this.#reaper.on('error', err => { if (this.listenerCount('error') > 0) this.emit('error', err) })
    }
  }

  /** Sets the job handler (`async job => result` or `(job, done) => ...`); the queue consumes once started. */
  execute (handler: JobHandler<TPayload, TResult>): void {
    this.#consumer.execute(handler as AsyncJobHandler<TPayload, TResult>)
    this.#handlerSet = true
    if (this.#state === 'started') this.#consume().catch(() => {})
  }

  /** Connects; starts consuming if a handler is set. Emits `started`. */
  start (): Promise<void> {
    if (this.#state === 'stopped') return Promise.reject(new QueueClosedError())
    this.#starting ??= this.#start()
    return this.#starting
  }

  async #start (): Promise<void> {
    await this.#producer.start()
    if (this.#handlerSet) await this.#consume()
    this.#state = 'started'
    this.emit('started')
  }

  #consume (): Promise<void> {
    this.#consuming ??= Promise.all([this.#consumer.start(), this.#reaper?.start()]).then(() => {})
    return this.#consuming
  }

  /**
   * Stops taking jobs, waits up to `shutdownTimeout` ms for running ones, hands the rest back,
   * rejects pending waits and releases the storage. Emits `stopped`. Idempotent.
   */
  stop (): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop (): Promise<void> {
    const wasStarted = this.#starting !== undefined
    this.#state = 'stopped'
    await this.#starting?.catch(() => {})
    await Promise.all([this.#consumer.stop(), this.#reaper?.stop()])
    await this.#producer.stop()
    if (wasStarted) this.emit('stopped')
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
