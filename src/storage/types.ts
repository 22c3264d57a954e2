/**
 * The Storage contract: the only thing Queue, Producer, Consumer, Reaper and Admin know about a backend.
 *
 * Each operation is atomic and shaped so that Redis can do it in one round trip (one Lua script)
 * and PostgreSQL in one statement. Payloads, results and errors are opaque bytes: serialization
 * happens above this layer. Time is read from the backend's clock (`Date.now` unless the backend
 * takes a `clock` option), so `t.mock.timers` drives every backend the same way in tests.
 *
 * Fencing: a claim increments `attempts`; every settlement names the attempt it settles, and the
 * backend refuses it unless the job is still `processing` in that very attempt, held by the
 * settling worker. A worker whose lease was taken away (reaped and re-run elsewhere, or handed
 * back unrun and claimed again in the same attempt) therefore cannot overwrite the new run, and
 * `settle` tells it which of its settlements were refused.
 *
 * Two contracts: {@link Storage} is what the data path needs (Queue, Producer, Consumer, Reaper);
 * {@link AdminStorage} adds the retained history, the state indexes and the operator actions of
 * issue 9 (Admin, the CLI, metrics, the dashboard). Every backend implements both: Memory and
 * File do; Redis does from branch admin-redis on; PostgreSQL will. Members of {@link Storage}
 * marked "optional in the type only" are required of every {@link AdminStorage}: they are optional
 * so that a backend predating issue 9 still type-checks while it catches up.
 *
 * ## The job lifecycle (state × operation → state)
 *
 * States: `queued` (ready, in claim order), `delayed` (waits for its due time), `processing`
 * (leased to a worker until a deadline), `failing` (an attempt failed; the retry waits out its
 * backoff), and the terminal `completed`, `failed`, `cancelled`. "—": the operation does not
 * apply (no change; the answer says why). Every change of state gives the job a new
 * {@link Stamp}: its position in the index of its new state.
 *
 * | operation                         | from                         | to                                                    |
 * | --------------------------------- | ---------------------------- | ----------------------------------------------------- |
 * | enqueue (id unknown, or its result TTL passed) | (none)           | `queued` (delay 0) or `delayed`; a retained history of a previous run of the id is dropped |
 * | enqueue (id taken)                | any, result cache live       | — (`duplicate` with the state, or the stored outcome); `notify` adds a waiter to an active job |
 * | claim (queue not paused)          | `queued`                     | `processing`, attempts + 1, lease now + leaseMs       |
 * | claim promotes first              | `delayed`, `failing` due     | `queued` (tail, in (due time, id) order)              |
 * | claim while paused                | any                          | — (no job is handed out; a blocking claim waits, and resume wakes it) |
 * | settle complete  (fenced)         | `processing`                 | `completed` (result cached `ttl` ms)                  |
 * | settle fail      (fenced)         | `processing`                 | `failed` (error cached `ttl` ms, indexed by its group)|
 * | settle retry     (fenced)         | `processing`                 | `failing` until now + delay (delay 0: `queued`)       |
 * | settle release   (fenced)         | `processing`                 | `queued` at the head, attempts − 1 (not counted)      |
 * | settle cancel    (fenced)         | `processing`                 | `cancelled` (kept `ttl` ms)                           |
 * | any settle, cancel requested      | `processing`                 | `cancelled` (whatever the settlement said)            |
 * | settle of another attempt/worker  | any                          | — (refused: reported in {@link SettleResult.refused}) |
 * | extendLeases                      | `processing` (held)          | — (deadline pushed; lost and cancel-requested ids reported) |
 * | cancel                            | `queued`, `delayed`, `failing` | `cancelled`, result cache none (getStatus null, id free at once), in history |
 * | cancel                            | `processing` / terminal      | — (`processing` / `completed`)                        |
 * | abort                             | `queued`, `delayed`, `failing` | `cancelled` (kept `ttl` ms)                         |
 * | abort                             | `processing`                 | — cancel requested, `abort` notice (`aborting`)       |
 * | recoverStalled, lease expired     | `processing`                 | `queued` (tail), stalls + 1; or `failed` when out of attempts or past maxStalls; `cancelled` if a cancel was requested |
 * | admin retry                       | `failed`, `completed`, `cancelled` (history retained), `failing` | `queued` (tail), new attempt series: attempts 0, stalls 0, result/error cleared; payload, options and attempt history kept |
 * | admin promote                     | `delayed`, `failing`         | `queued` (tail) now, attempts kept                    |
 * | admin cancel                      | `queued`, `delayed`, `failing` | `cancelled` (kept for the job's resultTTL), as abort |
 * | admin cancel                      | `processing`                 | — cancel requested, `abort` notice (as abort)         |
 * | admin remove / purge              | any but `processing`         | (none): record, history and result cache deleted, id free; waiters of an active job get `done`/`cancelled` |
 * | setPaused(true) / setPaused(false)| any                          | — (claims stop / resume; running jobs finish; enqueue goes on) |
 * | result TTL passes                 | terminal                     | — for history; getStatus null, dedup free (see {@link Retention}) |
 * | retention passes (age or count)   | terminal                     | (none) once the result TTL passed too; until then only the result cache remains |
 *
 * Orders that decide outcomes are total and the same on every backend: the ready queue is FIFO
 * (releases go to its head); due jobs are promoted by (due time, id); the reaper recovers expired
 * leases by (lease deadline, id); ids compare by code point (the byte order of their UTF-8 form).
 */

/** Where a job is in its life. `failing`: an attempt failed and a retry waits out its backoff. */
export type JobState = 'queued' | 'delayed' | 'processing' | 'failing' | 'completed' | 'failed' | 'cancelled'

/** States a job never leaves (but through an admin retry or remove). */
export type TerminalState = 'completed' | 'failed' | 'cancelled'

/** States in which the id is taken and a new enqueue is a duplicate. */
export type ActiveState = 'queued' | 'delayed' | 'processing' | 'failing'

/**
 * A job's position in the index of its current state: a number that grows strictly with every
 * change of state in the queue, `stamp = max(now × 1000, previous stamp + 1)` with `now` the
 * change's time in epoch ms (so `stamp / 1000` is about the time the job entered its state, and
 * runs ahead of the clock only while a queue changes state more than 1,000 times per ms).
 * Unique per queue: every state index is ordered by it, with no ties, and it is the unit of the
 * cursors of {@link AdminStorage.listJobs} and {@link AdminStorage.apply}. Exact in a double until
 * the year 2255.
 */
export type Stamp = number

/** A job as the producer hands it to the backend. */
export interface NewJob {
  readonly id: string
  readonly payload: Buffer
  /** Total attempts allowed, >= 1. */
  readonly maxAttempts: number
  /** How long the terminal record (with result or error) answers getStatus and dedup, in ms. */
  readonly resultTTL: number
  /** Ms to wait before the job becomes claimable; 0 = ready now. */
  readonly delay: number
  /**
   * The longest one attempt of this job may run, in ms (issue 10 item 3; enforced by the
   * consumer). Stored with the job and returned as {@link ClaimedJob.runTimeout}.
   * @default 0 (the consumer's `visibilityTimeout`)
   */
  readonly runTimeout?: number
  /**
   * The enqueuer waits for the outcome: the job's `done` notice must reach the `done` subscribers
   * of the storage instance that enqueued it, also when the id is a duplicate of an active job
   * (the instance is then added to the job's recipients). Backends may deliver more widely.
   * @default false
   */
  readonly notify?: boolean
  /**
   * The trace context of the enqueue: a W3C `traceparent`, then optionally a space and the
   * `tracestate`, at most 512 bytes (src/trace-context.ts). Stored with the job and handed to
   * every attempt as {@link ClaimedJob.trace}: how `relayq/tracing` makes a worker's span a child
   * of the producer's. A backend checks it with `validTrace` and stores the job without it when it
   * is too large or malformed (no error: the job matters, its trace context does not).
   * @default undefined (none)
   */
  readonly trace?: string
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
  /**
   * The job's own run-time limit in ms ({@link NewJob.runTimeout}), 0 when unset. Every
   * {@link AdminStorage} sets it; optional in the type only (see the module doc).
   */
  readonly runTimeout?: number
  /**
   * Epoch ms since which the job was claimable: its enqueue, its due time (delayed, or failing
   * after a retry), or its requeue by the reaper, a release or an admin action. `started − readyAt`
   * is the job's wait. Every {@link AdminStorage} sets it; optional in the type only.
   */
  readonly readyAt?: number
  /** {@link NewJob.trace} as enqueued (validated again on read); absent when none was given or it was dropped. */
  readonly trace?: string
}

/**
 * What a failure looks like, for grouping: the error's name, its message with the variable parts
 * (numbers, ids, quoted strings) replaced, and its top stack frame. Computed above the storage
 * (src/failure-groups.ts) and handed over with the failure, so that backends index failed jobs by
 * `key` without parsing errors.
 */
export interface ErrorGroup {
  /** A short stable digest of name, message and frame (16 hex digits): the index key and the selector. */
  readonly key: string
  readonly name: string
  /** The normalized message. */
  readonly message: string
  /** The top stack frame, or '' when the error had none. */
  readonly frame: string
}

/**
 * How a worker ends one attempt. `attempt` is `ClaimedJob.attempts` as claimed.
 * If a cancel was requested for the job (see {@link Storage.abort}), every settlement ends it
 * `cancelled` instead.
 */
export type Settlement =
  /** Terminal success: store `result` for `ttl` ms. */
  | { readonly type: 'complete', readonly id: string, readonly attempt: number, readonly result: Buffer, readonly ttl: number }
  /** Terminal failure: store `error` for `ttl` ms; `group` files the job under its failure group (none: under no group). */
  | { readonly type: 'fail', readonly id: string, readonly attempt: number, readonly error: Buffer, readonly ttl: number, readonly group?: ErrorGroup }
  /** The attempt failed and another is allowed: state `failing`, claimable again after `delay` ms. */
  | { readonly type: 'retry', readonly id: string, readonly attempt: number, readonly error: Buffer, readonly delay: number }
  /** Hand the job back unrun (graceful shutdown): it goes to the head of the queue, the attempt is not counted. */
  | { readonly type: 'release', readonly id: string, readonly attempt: number }
  /** The worker saw the job's cancel request and stopped: terminal `cancelled`, kept `ttl` ms. */
  | { readonly type: 'cancel', readonly id: string, readonly attempt: number, readonly ttl: number }

/** What `settle` did. */
export interface SettleResult {
  /** The jobs claimed after the settlements (at most `next.max`). */
  readonly jobs: ClaimedJob[]
  /**
   * Indexes (into the `settlements` argument, ascending) of the settlements refused by fencing:
   * their outcome was not stored, so nobody may announce it.
   */
  readonly refused: readonly number[]
}

/** Options of a claim. */
export interface ClaimOptions {
  /** Most jobs to return, >= 0. */
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

/** A job's stored record, as `getStatus` answers it (the result cache: see {@link Retention}). */
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
 * `done`: a job reached a terminal state (or was removed by an admin: `cancelled`). `result`/`error`
 * may be left out (large values); the listener then reads them with `getStatus`. `abort`: a running
 * job's cancel was requested. `gap`: notices may have been missed (the backend lost its
 * subscription for a while, e.g. on a reconnect); whoever waits for something should check its
 * state. Delivered whatever the type filter.
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

/** Job counts per state. Terminal states count the jobs retained in history (see {@link Retention}). */
export type StateCounts = Record<JobState, number>

/** A consumer as it announces itself in its heartbeat. */
export interface WorkerInfo {
  /** The consumer's `workerId` (the lease holder's name). */
  readonly id: string
  /** `os.hostname()` of its process. */
  readonly host: string
  readonly pid: number
  /** Jobs it runs at once at most. */
  readonly concurrency: number
  /** Jobs it runs right now. */
  readonly running: number
  /** Epoch ms when it started consuming. */
  readonly startedAt: number
}

/**
 * A storage backend: the data path. Every `queue` argument is a queue name; several queues share
 * one storage without seeing each other's jobs.
 */
export interface Storage {
  /**
   * The largest payload, result or error of one job this storage stores, in bytes (see the
   * README, "Size limits"). The producer and the consumer check values against it before they
   * send them, so that one value too large costs its own job and never a batch.
   * @default 536870912 (512 MiB) when absent
   */
  readonly maxValueBytes?: number

  /** Opens connections and files. Reference-counted: each `connect` needs one `disconnect`. */
  connect (): Promise<void>
  /** Releases what `connect` opened once the last user disconnects; a client the user passed in stays open. */
  disconnect (): Promise<void>

  /** Enqueues with dedup on the id, in order; one outcome per job. Stores nothing for duplicates. `[]` answers `[]`. */
  enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]>

  /**
   * Claims up to `max` ready jobs (promoting due delayed ones) and leases them to `workerId`; waits
   * up to `blockMs` if none is ready. Claims nothing while the queue is paused: a blocking claim
   * then waits, and a resume wakes it.
   */
  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]>

  /**
   * Applies settlements (each atomically with its notice), then claims up to `next.max` ready jobs
   * without waiting (none while paused). Answers which settlements fencing refused. Rejects with
   * a `retryable` StorageError when the storage cannot be reached (the consumer sends the same
   * settlements again later); with any other error when it refuses something in the call (the
   * consumer then sends the settlements apart to find the one at fault), having applied nothing. The bare array
   * (claimed jobs, refusals unknown) is the answer of backends predating issue 9: the consumer then
   * announces every outcome. Every {@link AdminStorage} answers a {@link SettleResult}.
   */
  settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult | ClaimedJob[]>

  /** Pushes the lease deadline of these running jobs to now + `leaseMs`; reports lost jobs and pending cancel requests. */
  extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport>

  /**
   * Cancels a job that is not running (queued, delayed or failing): `cancelled` in history, no
   * result cache (getStatus answers null and the id is free at once), `done`/`cancelled` notice published.
   */
  cancel (queue: string, id: string): Promise<CancelOutcome>

  /** Like `cancel`, and for a running job records the request and publishes an `abort` notice. Terminal records kept `ttl` ms. */
  abort (queue: string, id: string, ttl: number): Promise<AbortOutcome>

  /** The job's record, or null when unknown or its result TTL passed (history may outlive it: see {@link Retention}). */
  getStatus (queue: string, id: string): Promise<JobRecord | null>

  /** Sets a terminal record's remaining result-cache lifetime to `ttl` ms from now. History retention is unaffected. */
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
   * than `maxStalls` stalls is failed with `error` (filed under `group`) instead. Jobs are taken in
   * (lease deadline, id) order. The ended attempt is recorded as `stalled`, naming its worker.
   * An {@link AdminStorage} may also trim history past its retention age here (bounded work).
   */
  recoverStalled (queue: string, maxStalls: number, error: Buffer, group?: ErrorGroup): Promise<RecoveryOutcome>

  /** Takes or renews (when `owner` already holds it) a lock for `ttl` ms; false if someone else holds it. */
  acquireLock (name: string, owner: string, ttl: number): Promise<boolean>

  /** Releases the lock if `owner` holds it. */
  releaseLock (name: string, owner: string): Promise<void>

  /** Number of jobs per state. O(1) (O(log n) at most) on every {@link AdminStorage}. */
  counts (queue: string): Promise<StateCounts>

  /**
   * Deletes everything of this storage instance: every queue (jobs, history, settings, workers)
   * and lock under its namespace (Memory: the instance's memory; File: everything relayq created
   * under `basePath` but the directory's identity file; Redis: every key under the key prefix, by
   * SCAN and UNLINK, on every master). Resolves and does nothing when not connected. Subscriptions
   * stay; parked claims keep waiting (on an empty queue). Other processes must not use the queues
   * meanwhile. Optional in the type only (see the module doc).
   */
  clear? (): Promise<void>

  /**
   * Registers or refreshes a consumer in the queue's worker registry until now + `ttl` ms (`ttl`
   * 0: removes it). Consumers call it at start, every lease-heartbeat period, and at stop.
   * Optional in the type only (see the module doc).
   */
  heartbeat? (queue: string, worker: WorkerInfo, ttl: number): Promise<void>
}

/**
 * How long the history of finished jobs is kept: per terminal state, a job stays in history while
 * it is among the newest `count` jobs of its state AND entered it less than `age` ms ago.
 *
 * - Configured per queue and stored with the queue ({@link AdminStorage.setRetention}, or
 *   `Admin.setRetention`), so every process applies the same; a queue with none stored uses the
 *   defaults: completed `{ age: 3_600_000 (1 h), count: 1_000 }`, failed and cancelled
 *   `{ age: 604_800_000 (7 days), count: 10_000 }`. `count: 0` or `age: 0` keeps no history.
 * - History (listJobs, getJob, failureGroups, counts) and the result cache (getStatus, getResult,
 *   dedup, `resultTTL`, `updateResultTTL`) are two lifetimes of one record: each keeps its meaning.
 *   The result cache may expire before the history (getStatus then answers null and the id is
 *   free, while getJob still shows the job) or after it (getJob answers null while getStatus still
 *   answers). A record is gone once both have ended.
 * - Enqueueing an id again once its result TTL passed starts a new job: the previous run's
 *   retained history is dropped (one record per id).
 * - Enforcement: reads never show a job past its retention; writes trim what they push out
 *   (count at once; age as time passes, with bounded work per call, and on the reaper's passes).
 *   Past its age means `Math.floor(stamp / 1000) <= now - age` (stamps decide, as for `before`).
 *   A new retention first drops what the old one already hid: a longer age never brings it back.
 */
export interface RetentionRule {
  /** Longest a finished job stays in history, in ms, >= 0. */
  readonly age: number
  /** Most finished jobs of the state kept in history, newest first, >= 0. */
  readonly count: number
}

/** Retention of one queue, per terminal state (see {@link RetentionRule}). */
export type Retention = Readonly<Record<TerminalState, RetentionRule>>

/** Cumulative counts of what happened in a queue since its creation (or its last clear). Never decrease. */
export interface QueueTotals {
  /** Jobs stored by enqueue (duplicates not counted). */
  readonly enqueued: number
  /** Jobs that reached `completed`. */
  readonly completed: number
  /** Jobs that reached `failed` (by a worker or by the reaper). */
  readonly failed: number
  /** Attempts that failed with another attempt allowed (settle `retry`). */
  readonly retried: number
  /** Leases that expired and were recovered by the reaper. */
  readonly stalled: number
  /** Jobs that reached `cancelled`. */
  readonly cancelled: number
}

/** The state of one queue at a glance. */
export interface QueueOverview {
  readonly counts: StateCounts
  readonly paused: boolean
  /** Epoch ms at which the oldest `queued` job became queued; null when none is. */
  readonly oldestQueuedAt: number | null
  readonly totals: QueueTotals
  readonly retention: Retention
}

/** A queue of the storage, as {@link AdminStorage.queues} lists it. */
export interface QueueSummary {
  readonly name: string
  readonly counts: StateCounts
  readonly paused: boolean
}

/** A job as it appears in a list: what a row needs, without payload or result. */
export interface JobSummary {
  readonly id: string
  readonly state: JobState
  /** Position in the state's index; `Math.floor(stamp / 1000)` ≈ `enteredAt`. */
  readonly stamp: Stamp
  /** Epoch ms when the job entered its current state. */
  readonly enteredAt: number
  /** Epoch ms of the enqueue. */
  readonly createdAt: number
  /** Attempts of the current series so far. */
  readonly attempts: number
  readonly maxAttempts: number
  /** `delayed`, `failing`: epoch ms when it becomes claimable. */
  readonly dueAt?: number
  /** `processing`: the worker holding the lease. */
  readonly worker?: string
  /** `processing`: epoch ms when the lease expires. */
  readonly leaseUntil?: number
  /** `failed`, `failing`: the last error (bytes as stored). */
  readonly error?: Buffer
  /** `failed`: the key of its failure group, when it has one. */
  readonly group?: string
}

/** One attempt of a job, as its history records it. */
export interface AttemptRecord {
  /** The attempt number in its series (1 first); a released attempt's number is run again. */
  readonly attempt: number
  /** Epoch ms when it was claimed. */
  readonly startedAt: number
  /** Epoch ms when it ended; absent while it runs. */
  readonly finishedAt?: number
  /** The worker that ran it (for `stalled`: the one whose lease expired). */
  readonly worker: string
  /** How it ended; absent while it runs. */
  readonly outcome?: 'completed' | 'failed' | 'retried' | 'stalled' | 'cancelled' | 'released'
  /** `failed`, `retried`: the error bytes as the worker stored them. */
  readonly error?: Buffer
}

/** Everything known about one job: its retained history plus live facts. */
export interface JobDetail extends JobSummary {
  readonly payload: Buffer
  readonly resultTTL: number
  /** The delay it was enqueued with, in ms. */
  readonly delay: number
  /** {@link NewJob.runTimeout}, 0 when unset. */
  readonly runTimeout: number
  /** Epoch ms when the first attempt in `history` started (absent before any). */
  readonly startedAt?: number
  /** Epoch ms when it reached its terminal state. */
  readonly finishedAt?: number
  /** `completed`: the result. */
  readonly result?: Buffer
  /** Stalls of the current attempt series. */
  readonly stalls: number
  /** A cancel was requested while it runs (it ends `cancelled`). */
  readonly cancelRequested: boolean
  /** Storage instances (processes) waiting for its outcome through `enqueueAndWait`; not calls. */
  readonly waiters: number
  /** `queued`: jobs that entered `queued` before it and are still there (released jobs run first regardless). */
  readonly ahead?: number
  /** Terminal: epoch ms when getStatus, getResult and dedup stop answering for it (may be past). */
  readonly resultExpiresAt?: number
  /** Epoch ms since which it is or was claimable (see {@link ClaimedJob.readyAt}). */
  readonly readyAt: number
  /** Operator retries so far (each starts a new attempt series). */
  readonly retries: number
  /** Its newest attempts (all series), oldest first, at most 20; the running one last. */
  readonly history: readonly AttemptRecord[]
}

/** A page query of {@link AdminStorage.listJobs}. */
export interface JobQuery {
  readonly state: JobState
  /** Most jobs to return, 1 to 1000. */
  readonly limit: number
  /** `desc`: newest (largest stamp) first; `asc`: oldest first. */
  readonly order: 'asc' | 'desc'
  /** Continue after this stamp (exclusive, in `order`): the `next` of the previous page. */
  readonly after?: Stamp
}

/** A page of jobs. A job that changes state meanwhile leaves the list; one that enters it comes after the cursor in `asc`, before the first page in `desc`: no page shifts. */
export interface JobPage {
  readonly jobs: JobSummary[]
  /** The cursor of the next page, or null when this one reached the end. */
  readonly next: Stamp | null
}

/** What an operator action does (see the lifecycle table). */
export type AdminAction = 'retry' | 'remove' | 'cancel' | 'promote'

/**
 * The jobs an action targets: a list of ids (at most the chunk's `limit`), or the jobs of one
 * state, optionally only those that entered it before `before` (epoch ms; compared as stamps, so
 * `stamp < before × 1000`) and, for `failed`, those of one failure group. A state target is
 * walked oldest first, in chunks: `after` is the previous chunk's `next`, and `until` (the
 * answer's `until` of the first chunk) keeps jobs that enter the state meanwhile (a retried job
 * that fails again, say) out of the operation, so it always ends.
 */
export type JobTarget =
  | { readonly ids: readonly string[] }
  | { readonly state: JobState, readonly before?: number, readonly group?: string, readonly after?: Stamp, readonly until?: Stamp }

/** Per-id answer of an action. `skipped`: the job is in a state the action does not apply to. */
export type ActionResult = 'retried' | 'removed' | 'cancelled' | 'aborting' | 'promoted' | 'not_found' | 'skipped'

/** Options of one chunk of {@link AdminStorage.apply}. */
export interface ApplyOptions {
  /** Most jobs examined in this chunk, 1 to 1000 (a state target) — an ids target has at most this many ids. */
  readonly limit: number
  /** Count only: nothing changes; a state target is counted whole in one call (O(log n)). */
  readonly dryRun: boolean
}

/** What one chunk of an action did. */
export interface ApplyOutcome {
  /** Jobs of the target the action applies to, in this chunk (dry run on a state target: in the whole target). */
  readonly matched: number
  /** Jobs changed (`matched` but on a dry run, where it is 0). */
  readonly changed: number
  /** An ids target: one answer per id, in order (on a dry run, what would happen). */
  readonly results?: readonly ActionResult[]
  /** A state target: the `after` of the next chunk, or null when the target is done. */
  readonly next: Stamp | null
  /** A state target: the horizon to pass with every later chunk (the queue's last stamp when the first chunk ran). */
  readonly until: Stamp
}

/** Failed jobs of one {@link ErrorGroup} still in history. */
export interface FailureGroup extends ErrorGroup {
  readonly count: number
  /** Epoch ms when its oldest retained job failed. */
  readonly firstSeen: number
  /** Epoch ms when its newest job failed. */
  readonly lastSeen: number
  /** Ids of its newest jobs, newest first, at most 5. */
  readonly samples: readonly string[]
}

/** A consumer in the registry. */
export interface WorkerEntry extends WorkerInfo {
  /** Epoch ms of its last heartbeat. */
  readonly lastSeen: number
  /** Epoch ms when it leaves the registry unless it beats again. */
  readonly expiresAt: number
}

/**
 * The operator side of a backend (issue 9): retained history, state indexes, actions, pause,
 * retention, the worker registry. Each method is one atomic step (one Lua script, one SQL
 * statement) with bounded work: pages and chunks take a limit (at most 1000) and return a
 * cursor; nothing needs SCAN or KEYS. Reads of a queue that does not exist answer empty and
 * never create it. Arguments are validated by the caller (Admin); a backend must still never
 * crash or corrupt state on bad ones.
 */
export interface AdminStorage extends Storage {
  settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult>
  clear (): Promise<void>
  heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void>

  /** Every queue that holds anything (jobs, history, settings, workers), by name, with its counts. Not atomic across queues. */
  queues (): Promise<QueueSummary[]>

  /** Counts, pause flag, oldest queued job, totals and retention of one queue. */
  overview (queue: string): Promise<QueueOverview>

  /** A page of the jobs in one state, by stamp. O(log n + limit). */
  listJobs (queue: string, query: JobQuery): Promise<JobPage>

  /** One job's history and live facts, or null when it is neither active nor retained in history. */
  getJob (queue: string, id: string): Promise<JobDetail | null>

  /** One chunk of an operator action (see {@link JobTarget}, the lifecycle table); each chunk atomic. */
  apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome>

  /** Pauses or resumes claiming (stored: every process obeys). Resuming wakes blocked claims at once. */
  setPaused (queue: string, paused: boolean): Promise<void>

  /** Stores the queue's retention and trims what it pushes out of history. */
  setRetention (queue: string, retention: Retention): Promise<void>

  /** The failure groups of the queue's failed jobs in history, most jobs first, at most `limit` (1 to 1000). */
  failureGroups (queue: string, limit: number): Promise<FailureGroup[]>

  /** The consumers whose heartbeat has not expired, by id. */
  workers (queue: string): Promise<WorkerEntry[]>
}
