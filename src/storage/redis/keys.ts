/**
 * Names of a queue's Redis keys and channels. Every key of a queue starts with
 * `{<prefix>:<queue>}:` — one hash tag, so a queue lives in one Redis Cluster slot and every
 * script can touch all of its keys. Keys are built here only; scripts receive them in KEYS.
 */

/**
 * Escapes the characters that would end or open a hash tag (and the escape itself), so the
 * tag is exactly `<prefix>:<queue>` and two different names never share a key.
 */
function escape (name: string): string {
  return /[%{}]/.test(name) ? name.replace(/[%{}]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : name
}

/** The keys and channels of one queue. */
export class QueueKeys {
  /** LIST of ready job ids, oldest first. */
  readonly ready: string
  /** HASH id → active job record (state, attempts, ...; see src/scripts/_lib.lua). */
  readonly jobs: string
  /** HASH id → element of active jobs: the job as enqueued, payload included (see src/scripts/_lib.lua). */
  readonly elements: string
  /** ZSET of delayed and failing jobs by due time (ms). */
  readonly delayed: string
  /** ZSET of processing jobs by lease deadline (ms). */
  readonly leases: string
  /** HASH id → tokens of the storage instances waiting for the job's outcome. */
  readonly waiters: string
  /** HASH id → last error of jobs that failed an attempt. */
  readonly errors: string
  /** LIST of ids taken by a blocking BLMOVE and not yet claimed by claim.lua. */
  readonly claiming: string
  /** HASH id → when the reaper first saw the id in `claiming` (ms). */
  readonly seen: string
  /** Channel of abort and wake-up notices, heard by consumers. */
  readonly control: string
  /** Prefix of the per-instance reply channels: `<replyPrefix><token>`. */
  readonly replyPrefix: string
  readonly #done: string

  constructor (prefix: string, queue: string) {
    const base = `{${escape(prefix)}:${escape(queue)}}:`
    this.ready = base + 'ready'
    this.jobs = base + 'jobs'
    this.elements = base + 'elements'
    this.delayed = base + 'delayed'
    this.leases = base + 'leases'
    this.waiters = base + 'waiters'
    this.errors = base + 'errors'
    this.claiming = base + 'claiming'
    this.seen = base + 'seen'
    this.control = base + 'control'
    this.replyPrefix = base + 'reply:'
    this.#done = base + 'done:'
    this.donePrefixBytes = Buffer.byteLength(this.#done)
  }

  /** Bytes before the id in a `done:` key: scripts read ids back from the keys they are given. */
  readonly donePrefixBytes: number

  /** STRING holding a finished job's state and result (or error), expiring with its result TTL. */
  done (id: string): string {
    return this.#done + id
  }

  /** A SCAN pattern matching every terminal record of the queue (glob characters escaped). */
  get donePattern (): string {
    return this.#done.replace(/[*?[\]\\]/g, c => `\\${c}`) + '*'
  }

  /** Every key this queue may create except the per-job `done:` records (for cleanup and tests). */
  get fixed (): string[] {
    return [this.ready, this.jobs, this.elements, this.delayed, this.leases, this.waiters, this.errors, this.claiming, this.seen]
  }
}

/** The key of a lock (reaper leader election), in a slot of its own. */
export function lockKey (prefix: string, name: string): string {
  return `{${escape(prefix)}:lock:${escape(name)}}`
}
