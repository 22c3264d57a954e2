/**
 * The Storage contract: the only thing Queue, Producer, Consumer and Reaper know about a backend.
 *
 * Each operation is atomic and shaped so that Redis can do it in one round trip (one Lua script).
 * Payloads, results and errors are opaque bytes: serialization happens above this layer.
 * Time is read from the backend's clock (`Date.now` unless the backend takes a `clock` option),
 * so `t.mock.timers` drives every backend the same way in tests.
 *
 * Fencing: a claim increments `attempts`; every settlement names the attempt it settles, and the
 * backend ignores it unless the job is still `processing` in that very attempt, held by the
 * settling worker. A worker whose lease was taken away (reaped and re-run elsewhere, or handed
 * back unrun and claimed again in the same attempt) therefore cannot overwrite the new run.
 */

/** Where a job is in its life. `failing`: an attempt failed and a retry waits out its backoff. */
export type JobState = 'queued' | 'delayed' | 'processing' | 'failing' | 'completed' | 'failed' | 'cancelled'

/** States a job never leaves; their records expire after the job's result TTL. */
export type TerminalState = 'completed' | 'failed' | 'cancelled'

/** States in which the id is taken and a new enqueue is a duplicate. */
export type ActiveState = 'queued' | 'delayed' | 'processing' | 'failing'

/** A job as the producer hands it to the backend. */
export interface NewJob {
  readonly id: string
  readonly payload: Buffer
  /** Total attempts allowed, >= 1. */
  readonly maxAttempts: number
  /** How long the terminal record (with result or error) is kept, in ms. */
  readonly resultTTL: number
  /** Ms to wait before the job becomes claimable; 0 = ready now. */
  readonly delay: number
  /**
   * The enqueuer waits for the outcome: the job's `done` notice must reach the `done` subscribers
   * of the storage instance that enqueued it, also when the id is a duplicate of an active job
   * (the instance is then added to the job's recipients). Backends may deliver more widely.
   * @default false
   */
  readonly notify?: boolean
}

/** What an enqueue did for one job. Terminal outcomes carry the stored result or error. */
export type EnqueueOutcome =
  | { readonly status: 'queued' }
  | { readonly status: 'duplicate', readonly state: ActiveState }
  | { readonly status: 'completed', readonly result: Buffer }
  | { readonly status: 'failed', readonly error: Buffer }
  | { readonly status: 'cancelled' }

/** A job handed to a worker by `claim` or `settle`. */
export interface ClaimedJob {
  readonly id: string
  readonly payload: Buffer
  /** Attempts so far including this one: 1 on the first run. Also the fencing token. */
  readonly attempts: number
  readonly maxAttempts: number
  readonly resultTTL: number
  /** Epoch ms of the first enqueue. */
  readonly createdAt: number
}

/**
 * How a worker ends one attempt. `attempt` is `ClaimedJob.attempts` as claimed.
 * If a cancel was requested for the job (see {@link Storage.abort}), every settlement ends it
 * `cancelled` instead.
 */
export type Settlement =
  /** Terminal success: store `result` for `ttl` ms. */
  | { readonly type: 'complete', readonly id: string, readonly attempt: number, readonly result: Buffer, readonly ttl: number }
  /** Terminal failure: store `error` for `ttl` ms. */
  | { readonly type: 'fail', readonly id: string, readonly attempt: number, readonly error: Buffer, readonly ttl: number }
  /** The attempt failed and another is allowed: state `failing`, claimable again after `delay` ms. */
  | { readonly type: 'retry', readonly id: string, readonly attempt: number, readonly error: Buffer, readonly delay: number }
  /** Hand the job back unrun (graceful shutdown): it goes to the head of the queue, the attempt is not counted. */
  | { readonly type: 'release', readonly id: string, readonly attempt: number }
  /** The worker saw the job's cancel request and stopped: terminal `cancelled`, kept `ttl` ms. */
  | { readonly type: 'cancel', readonly id: string, readonly attempt: number, readonly ttl: number }

/** Options of a claim. */
export interface ClaimOptions {
  /** Most jobs to return, >= 1. */
  readonly max: number
  /** Lease length in ms: the job is stalled if not settled or extended by then. */
  readonly leaseMs: number
}

/** Options of a blocking claim. */
export interface BlockingClaimOptions extends ClaimOptions {
  /** Longest wait in ms when no job is ready (0: do not wait). A due delayed job ends the wait. */
  readonly blockMs: number
  /** Aborting it ends the wait early with `[]`. */
  readonly signal?: AbortSignal
}

/** What `cancel` did; the shape @platformatic/job-queue users know. */
export type CancelOutcome = 'cancelled' | 'not_found' | 'processing' | 'completed'

/** What `abort` did: `aborting` means a running job was asked to stop. */
export type AbortOutcome = 'cancelled' | 'aborting' | 'not_found' | 'completed'

/** What `updateResultTTL` did. */
export type UpdateTTLOutcome = 'updated' | 'not_found' | 'not_terminal'

/** A job's stored record. */
export interface JobRecord {
  readonly id: string
  readonly state: JobState
  readonly createdAt: number
  readonly attempts: number
  readonly maxAttempts: number
  /** Present once completed. */
  readonly result?: Buffer
  /** Present once failed, and while `failing` (the last attempt's error). */
  readonly error?: Buffer
}

/**
 * Published atomically with the state change that causes it.
 * `done`: a job reached a terminal state. `result`/`error` may be left out (large values);
 * the listener then reads them with `getStatus`. `abort`: a running job's cancel was requested.
 * `gap`: notices may have been missed (the backend lost its subscription for a while, e.g. on a
 * reconnect); whoever waits for something should check its state. Delivered whatever the type filter.
 */
export type Notice =
  | { readonly type: 'done', readonly id: string, readonly state: TerminalState, readonly result?: Buffer, readonly error?: Buffer }
  | { readonly type: 'abort', readonly id: string }
  | { readonly type: 'gap', readonly id?: undefined }

/** What `extendLeases` found. */
export interface LeaseReport {
  /** Ids this worker no longer holds (reaped, settled elsewhere, expired): their outcome will be ignored. */
  readonly lost: string[]
  /** Ids still held whose cancel was requested: a second path to the `abort` notice that cannot be missed. */
  readonly aborted: string[]
}

/** What the reaper did in one pass. */
export interface RecoveryOutcome {
  /** Jobs whose lease expired and that went back to the queue. */
  readonly requeued: string[]
  /** Jobs whose lease expired with no attempts or stalls left: now `failed`. */
  readonly failed: string[]
}

/** Job counts per state, for observability and tests. */
export type StateCounts = Record<JobState, number>

/**
 * A storage backend. Every `queue` argument is a queue name; several queues share one storage
 * without seeing each other's jobs.
 */
export interface Storage {
  /** Opens connections and files. Reference-counted: each `connect` needs one `disconnect`. */
  connect (): Promise<void>
  /** Releases what `connect` opened once the last user disconnects; a client the user passed in stays open. */
  disconnect (): Promise<void>

  /** Enqueues with dedup on the id, in order; one outcome per job. Stores nothing for duplicates. */
  enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]>

  /** Claims up to `max` ready jobs (promoting due delayed ones) and leases them to `workerId`; waits up to `blockMs` if none is ready. */
  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]>

  /** Applies settlements (each atomically with its notice), then claims up to `next.max` ready jobs without waiting. */
  settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<ClaimedJob[]>

  /** Pushes the lease deadline of these running jobs to now + `leaseMs`; reports lost jobs and pending cancel requests. */
  extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport>

  /** Cancels a job that is not running (queued, delayed or failing): removed, `done`/`cancelled` notice published. */
  cancel (queue: string, id: string): Promise<CancelOutcome>

  /** Like `cancel`, and for a running job records the request and publishes an `abort` notice. Terminal records kept `ttl` ms. */
  abort (queue: string, id: string, ttl: number): Promise<AbortOutcome>

  /** The job's record, or null when unknown or expired. */
  getStatus (queue: string, id: string): Promise<JobRecord | null>

  /** Sets a terminal record's remaining lifetime to `ttl` ms from now. */
  updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome>

  /**
   * Calls `listener` for the queue's notices until the returned function is called; resolves once
   * the subscription is active (a notice published after that is heard). `done` notices are
   * guaranteed for jobs this storage instance enqueued with `notify` (see {@link NewJob.notify});
   * `abort` notices for every job of the queue. With `type`, only notices of that type are needed:
   * a backend may use it to listen to less (a consumer wants `abort` notices, not one `done` per
   * job). Listeners still check `notice.type`; `gap` notices come whatever the type.
   */
  subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>>

  /**
   * Finds claimed jobs whose lease expired (including jobs claimed by a worker that died before
   * its lease was recorded), counts a stall and requeues them; a job out of attempts or with more
   * than `maxStalls` stalls is failed with `error` instead.
   */
  recoverStalled (queue: string, maxStalls: number, error: Buffer): Promise<RecoveryOutcome>

  /** Takes or renews (when `owner` already holds it) a lock for `ttl` ms; false if someone else holds it. */
  acquireLock (name: string, owner: string, ttl: number): Promise<boolean>

  /** Releases the lock if `owner` holds it. */
  releaseLock (name: string, owner: string): Promise<void>

  /** Number of jobs per state (terminal states count unexpired records). */
  counts (queue: string): Promise<StateCounts>
}
