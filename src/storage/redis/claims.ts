/**
 * The blocking claim protocol of the Redis backend. A claim first probes with claim.lua; when
 * nothing is ready it blocks in BLMOVE ready → claiming on a connection of its own, and the job
 * it moved is activated (leased) by a pipelined claim.lua that also claims more jobs ahead for
 * the same worker (prefetch). Delayed jobs end the wait through `W` notices on the queue's
 * control channel: a timer promotes the earliest when due, and the push wakes the BLMOVE.
 */
import type { Cluster, Redis } from 'iovalkey'
import { CONTROL, fromElement, toJobs } from './codec.ts'
import { notConnected, rethrow, storageError, type Connection } from './connection.ts'
import type { QueueKeys } from './keys.ts'
import type { Reply } from './scripts.ts'
import type { BlockingClaimOptions, ClaimedJob } from '../types.ts'

/** Slack beyond a blocking command's own timeout before its connection is presumed wedged (ms). */
const BLOCK_GUARD_MS = 5000

/** What the claim protocol needs from its storage. */
export interface ClaimHost {
  /** The open connection, or undefined when the storage is not connected. */
  connection (): Connection | undefined
  /** Whether someone still holds the storage connected. */
  open (): boolean
  keysOf (queue: string): QueueKeys
  clock (): number
  /** Subscribes to a channel on the storage's subscriber connection. */
  subscribe (channel: string, listener: (message: Buffer) => void): Promise<() => Promise<void>>
  /** Reports an error no caller awaits (logged, and emitted when someone listens). */
  report (error: Error): void
  /** Hands jobs claimed ahead back to the queue unrun (attempt not counted). */
  release (queue: string, workerId: string, jobs: readonly ClaimedJob[]): Promise<unknown>
}

/** A pipelined activation's answer: the jobs it claimed beyond the BLMOVE'd one, and whether it found the queue drained. */
interface Prefetch {
  readonly jobs: ClaimedJob[]
  readonly drained: boolean
  readonly nextDue: number
}

/** Activations waiting for the end of the event loop's turn (see `BlockingClaims.#deferred`). */
interface Deferred {
  readonly queue: string
  readonly workerId: string
  readonly elements: Buffer[]
  readonly leaseMs: number
  immediate: ReturnType<typeof setImmediate>
}

/** Blocking claims of one storage instance, and what they leave behind for its settle calls. */
export class BlockingClaims {
  readonly #host: ClaimHost
  /** Idle connections for BLMOVE; one is taken per blocking claim. */
  readonly #blockers: Array<Redis | Cluster> = []
  /** Connections currently blocked in BLMOVE, closed by `close`. */
  readonly #blocking = new Set<Redis | Cluster>()
  /** Blocked claims per queue, and the timer that promotes the next delayed job for them. */
  readonly #waits = new Map<string, { blocked: number, at: number, timer: ReturnType<typeof setTimeout> | undefined }>()
  /** Per queue and worker: the reply of a pipelined activation, with the jobs it claimed beyond the BLMOVE'd one. */
  readonly #prefetched = new Map<string, { queue: string, workerId: string, answered: Promise<Prefetch> }>()
  /** Per queue and worker: elements taken by BLMOVE whose activation Redis has not answered yet. */
  readonly #unanswered = new Map<string, Set<Buffer>>()
  /** Per queue and worker: the last pipelined activation until Redis answered it, even once a claim took its jobs (see `activated`). */
  readonly #activating = new Map<string, Promise<unknown>>()
  /** Queues this instance last found drained (a settle claimed fewer than asked) → earliest delayed due time (-1: none). */
  readonly #drained = new Map<string, number>()
  /** Queues whose control channel this instance watches for wake-ups (while claims block). */
  readonly #watching = new Map<string, Promise<unknown>>()
  /**
   * Per queue and worker: elements taken by BLMOVE from an empty queue whose activation is not
   * sent yet. It waits until the end of the event loop's turn: a handler that ends within it is
   * settled by a call that carries the activation (one script, not two, and the settle does not
   * queue behind an activation). Else the next BLMOVE'd job's activation carries it, or it goes
   * alone when the turn ends, or before any other command of this instance about the queue
   * (`flush`), so this process never sees the job queued once its handler started.
   */
  readonly #deferred = new Map<string, Deferred>()

  constructor (host: ClaimHost) {
    this.#host = host
  }

  async claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const host = this.#host
    const k = host.keysOf(queue)
    const { max, leaseMs, blockMs, signal } = options
    const deadline = Date.now() + blockMs
    // Jobs the last BLMOVE's activation claimed beyond its own come first.
    const early = await this.takePrefetched(queue, workerId, max)
    if (early.length > 0) return early
    // Right after this instance found the queue drained, a probe would find nothing either:
    // block at once (BLMOVE returns at once if a job arrived meanwhile).
    // Right after a BLMOVE'd job was handed over, its settle call goes first (sent within this
    // turn of the event loop when the handler is fast): block again once the turn ends.
    if (blockMs > 0 && this.#drained.has(queue) && this.#deferred.has(pairKey(queue, workerId))) await new Promise(resolve => setImmediate(resolve))
    let nextDue = this.#drained.get(queue)
    this.#drained.delete(queue)
    let probe = nextDue === undefined || blockMs <= 0
    for (;;) {
      if (probe) {
        const reply: Reply[] = await this.#scripts().claimBuffer(k.for('claim'), [host.clock(), leaseMs, max, workerId]).catch(rethrow('claim'))
        const jobs = toJobs(reply, 1)
        if (jobs.length > 0 || blockMs <= 0) return jobs
        nextDue = reply[0] as number
      }
      probe = true
      const remaining = deadline - Date.now()
      if (remaining <= 0 || signal?.aborted === true || !host.open()) return []
      // Nothing ready: block until a job arrives, the earliest delayed job is due, or time is up.
      const wait = nextDue !== undefined && nextDue >= 0 ? Math.max(1, Math.min(remaining, nextDue - host.clock())) : remaining
      const element = await this.#blockingMove(queue, k, wait, signal)
      if (element === null) continue
      const job = fromElement(element)
      const key = pairKey(queue, workerId)
      if (job === undefined) {
        // A large payload lives in Redis only: it comes with the activation.
        const activation = this.#activate(key, queue, workerId, k, [element], leaseMs, max)
        const jobs = toJobs(await activation.catch(rethrow('claim')), 1)
        if (jobs.length > 0) return jobs
        continue
      }
      // The element holds the whole job: hand it over now, without waiting for the activation
      // (which records the claim and lease). Until the activation is answered, this worker's
      // settle calls carry the element and activate it first if it still waits (see settle.lua),
      // so a settlement cannot overtake its activation, not even one sent again after "Function not
      // found" or NOSCRIPT (scripts.ts).
      // If the job is gone (cancelled meanwhile), fencing ignores the settlement.
      const deferred = this.#deferred.get(key)
      if (deferred === undefined) {
        // The queue was empty: most likely this job is alone (a request/response call), and a
        // fast handler's settle call will carry its activation (one script less, and the settle
        // does not queue behind it). The next claim blocks again at once: nothing was ready.
        const immediate = setImmediate(() => this.#flushDeferred(key))
        immediate.unref()
        this.#deferred.set(key, { queue, workerId, elements: [element], leaseMs, immediate })
        this.#pending(key).add(element)
        this.#drained.set(queue, nextDue ?? -1)
        return [job]
      }
      // A second job right behind: a burst. Activate both now, and claim up to `max - 1` more
      // for the next call.
      clearImmediate(deferred.immediate)
      this.#deferred.delete(key)
      const handed = deferred.elements.length
      const activation = this.#activate(key, queue, workerId, k, [...deferred.elements, element], leaseMs, max + handed)
      const answered = activation.then((reply: Reply[]): Prefetch => {
        const jobs = toJobs(reply, 1)
        const mine = jobs.findIndex(j => j.id === job.id && j.attempts === job.attempts)
        if (mine >= 0) jobs.splice(mine, 1)
        for (const e of deferred.elements) {
          const earlier = fromElement(e)
          const at = earlier === undefined ? -1 : jobs.findIndex(j => j.id === earlier.id && j.attempts === earlier.attempts)
          if (at >= 0) jobs.splice(at, 1)
        }
        return { jobs, drained: jobs.length + 1 < max, nextDue: reply[0] as number }
      }, (err: unknown): Prefetch => {
        host.report(storageError('claim', err))
        return { jobs: [], drained: false, nextDue: -1 }
      })
      this.#prefetched.set(key, { queue, workerId, answered })
      return [job]
    }
  }

  /** The elements of a (queue, worker) pair whose activation Redis has not answered yet. */
  #pending (key: string): Set<Buffer> {
    let set = this.#unanswered.get(key)
    if (set === undefined) {
      set = new Set<Buffer>()
      this.#unanswered.set(key, set)
    }
    return set
  }

  /** The pair's elements leave the unanswered set: a script that activates them was answered. */
  #answered (key: string, elements: readonly Buffer[]): void {
    const set = this.#unanswered.get(key)
    if (set === undefined) return
    for (const e of elements) set.delete(e)
    if (set.size === 0) this.#unanswered.delete(key)
  }

  /**
   * Sends claim.lua activating `elements` (taken by BLMOVE for `workerId`) and claiming up to
   * `max` jobs in all; until it is answered, settle calls carry the elements and heartbeats wait for it.
   */
  #activate (key: string, queue: string, workerId: string, k: QueueKeys, elements: Buffer[], leaseMs: number, max: number): Promise<Reply[]> {
    const pending = this.#pending(key)
    for (const e of elements) pending.add(e)
    const activation: Promise<Reply[]> = this.#scripts().claimBuffer(k.for('claim'), [this.#host.clock(), leaseMs, max, workerId, ...elements])
    const done = activation.then(() => {}, () => {})
    this.#activating.set(key, done)
    done.then(() => {
      if (this.#activating.get(key) === done) this.#activating.delete(key)
      this.#answered(key, elements)
    })
    return activation
  }

  /** Sends the deferred activations of `queue` now: a command about it follows. */
  flush (queue: string): void {
    if (this.#deferred.size === 0) return
    for (const [key, deferred] of this.#deferred) if (deferred.queue === queue) this.#flushDeferred(key)
  }

  /** Sends the pair's deferred activation now (the turn ended, or a command must follow it). */
  #flushDeferred (key: string): void {
    const deferred = this.#deferred.get(key)
    if (deferred === undefined) return
    clearImmediate(deferred.immediate)
    this.#deferred.delete(key)
    const { queue, workerId, elements, leaseMs } = deferred
    if (!this.#host.open() || this.#host.connection() === undefined) return // left in `claiming`: the reaper hands them back
    // max 0: activation only (the consumer's claims are elsewhere by now).
    this.#activate(key, queue, workerId, this.#host.keysOf(queue), elements, leaseMs, 0)
      .catch((err: unknown) => this.#host.report(storageError('claim', err)))
  }

  /**
   * A settle call for `workerId` is about to be sent: the elements whose activation is not
   * answered, which it carries (undefined: none). Deferred activations are carried by it, so
   * none is sent for them; `done` says when the call was answered.
   */
  carry (queue: string, workerId: string): { elements: Buffer[], done: (ok: boolean) => void } | undefined {
    if (this.#unanswered.size === 0) return undefined
    const key = pairKey(queue, workerId)
    const set = this.#unanswered.get(key)
    if (set === undefined) return undefined
    const deferred = this.#deferred.get(key)
    if (deferred !== undefined) {
      clearImmediate(deferred.immediate)
      this.#deferred.delete(key)
    }
    const elements = [...set]
    return {
      elements,
      done: ok => {
        if (ok) this.#answered(key, elements)
        else if (deferred !== undefined && this.#host.open()) {
          // Not known to have reached Redis: activate them on their own.
          const again = this.#deferred.get(key)
          if (again === undefined) {
            const immediate = setImmediate(() => this.#flushDeferred(key))
            immediate.unref()
            this.#deferred.set(key, { ...deferred, immediate })
          } else again.elements.unshift(...deferred.elements)
        }
      }
    }
  }

  /**
   * The jobs a pipelined activation claimed for `workerId` beyond the BLMOVE'd one (at most
   * `max`; any more are handed back), and whether it found the queue drained.
   */
  async takePrefetched (queue: string, workerId: string, max: number): Promise<ClaimedJob[]> {
    const key = pairKey(queue, workerId)
    const pending = this.#prefetched.get(key)
    if (pending === undefined) return []
    this.#prefetched.delete(key)
    const { jobs, drained, nextDue } = await pending.answered
    if (drained && jobs.length === 0) this.#drained.set(queue, nextDue)
    if (jobs.length > max) await this.#host.release(queue, workerId, jobs.splice(max))
    return jobs
  }

  /** Hands back every job claimed ahead (the consumers are gone). */
  async releaseAll (): Promise<void> {
    for (const { queue, workerId } of [...this.#prefetched.values()]) await this.takePrefetched(queue, workerId, 0).catch(() => {})
  }

  /**
   * Resolves once the last activation sent for `workerId` was answered (undefined if none is
   * pending). A heartbeat about its jobs must reach Redis after it: sent later on the same
   * connection it normally does, but an activation that failed with "Function not found"
   * (FUNCTION FLUSH, a restart, a failover, a new Cluster master: it goes out again once the
   * library is loaded) or NOSCRIPT (on the EVALSHA path: it goes out again as EVAL) is sent again
   * behind it, and resolves only then. A deferred activation
   * is sent first. (Settle calls carry the activation instead: they must not wait.)
   */
  activated (queue: string, workerId: string): Promise<unknown> | undefined {
    if (this.#deferred.size > 0) this.#flushDeferred(pairKey(queue, workerId))
    return this.#activating.size === 0 ? undefined : this.#activating.get(pairKey(queue, workerId))
  }

  /**
   * Notes what a settle call that claimed `claimed` of `max` jobs learnt: fewer than asked means
   * the queue is drained, and the next claim may block at once until `nextDue` (-1: no delayed job).
   */
  settled (queue: string, max: number, claimed: number, nextDue: number): void {
    if (max > 0 && claimed < max) this.#drained.set(queue, nextDue)
    else this.#drained.delete(queue)
  }

  /** Ends every wait and closes the blocking connections. */
  close (): void {
    // Deferred activations stay unsent: their entries wait in `claiming` until the reaper hands them back.
    for (const deferred of this.#deferred.values()) clearImmediate(deferred.immediate)
    this.#deferred.clear()
    for (const wait of this.#waits.values()) clearTimeout(wait.timer)
    this.#waits.clear()
    this.#watching.clear()
    for (const connection of this.#blocking) connection.disconnect()
    this.#blocking.clear()
    for (const connection of this.#blockers.splice(0)) connection.disconnect()
  }

  #scripts (): Connection['scripts'] {
    const connection = this.#host.connection()
    if (connection === undefined) throw notConnected()
    return connection.scripts
  }

  /**
   * BLMOVE ready → claiming on a connection of its own; resolves the moved element, or null on
   * timeout, abort (the connection is closed: nothing else can end a blocked command) or a
   * connection that stopped answering. An element moved just as the connection closes stays in
   * `claiming` until the reaper hands it back.
   */
  async #blockingMove (queue: string, k: QueueKeys, waitMs: number, signal: AbortSignal | undefined): Promise<Buffer | null> {
    const owner = this.#host.connection()
    if (owner === undefined) return null
    await this.#watch(queue, k)
    const connection = this.#blockers.pop() ?? owner.duplicate()
    this.#blocking.add(connection)
    const wait = this.#waits.get(queue) ?? { blocked: 0, at: Infinity, timer: undefined }
    this.#waits.set(queue, wait)
    wait.blocked++
    return await new Promise<Buffer | null>((resolve, reject) => {
      let settled = false
      const end = (element: Buffer | null, reuse: boolean, err?: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(guard)
        signal?.removeEventListener('abort', onAbort)
        wait.blocked--
        this.#blocking.delete(connection)
        if (reuse && this.#host.open()) this.#blockers.push(connection)
        else connection.disconnect()
        if (err !== undefined && this.#host.open()) reject(storageError('claim', err))
        else resolve(element)
      }
      const onAbort = (): void => end(null, false)
      const guard = setTimeout(() => end(null, false), waitMs + BLOCK_GUARD_MS)
      signal?.addEventListener('abort', onAbort, { once: true })
      connection.blmoveBuffer(k.ready, k.claiming, 'LEFT', 'RIGHT', (waitMs / 1000).toFixed(3)).then(
        element => end(element, true),
        err => end(null, false, err)
      )
    })
  }

  /**
   * Watches the queue's control channel while claims block on it: a `W<dueAt>` notice says a
   * delayed job became the earliest, so a timer promotes it when due, and the push to the ready
   * list wakes the BLMOVE. No polling.
   */
  #watch (queue: string, k: QueueKeys): Promise<unknown> {
    let watching = this.#watching.get(queue)
    if (watching === undefined) {
      watching = this.#host.subscribe(k.control, message => {
        if (message[0] !== CONTROL.wake) return
        const at = Number(message.subarray(1).toString())
        // A claim about to block without probing first must hear of it too.
        const due = this.#drained.get(queue)
        if (due !== undefined && (due < 0 || at < due)) this.#drained.set(queue, at)
        const wait = this.#waits.get(queue)
        if (wait === undefined || wait.blocked === 0 || at >= wait.at) return
        clearTimeout(wait.timer)
        wait.at = at
        wait.timer = setTimeout(() => {
          wait.at = Infinity
          wait.timer = undefined
          // A failed promotion costs the blocked claims a wait of up to blockTimeout (a claim promotes due jobs too): say so.
          this.#host.connection()?.scripts.claim(k.for('claim'), [this.#host.clock(), 1, 0, '']).catch((err: unknown) => this.#host.report(storageError('promotion of a delayed job', err)))
        }, Math.max(0, at - this.#host.clock()))
        wait.timer.unref()
      })
      // A failed subscription is tried again by the next blocking claim.
      watching.catch(() => this.#watching.delete(queue))
      this.#watching.set(queue, watching)
    }
    return watching
  }
}

/** One key for a (queue, worker) pair; length-prefixed, so no two pairs share it whatever the names. */
function pairKey (queue: string, workerId: string): string {
  return `${queue.length}:${queue}${workerId}`
}
