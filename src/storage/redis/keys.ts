/**
 * Names of the Redis keys and channels of a storage instance. Every key of a queue starts with
 * `{<prefix>:<queue>}:` — one hash tag, so a queue lives in one Redis Cluster slot and every
 * script can touch all of its keys. The instance's own keys (queue registry, locks) share the tag
 * `{<prefix>}`. Keys are built here only; scripts receive them in KEYS.
 *
 * No two (prefix, queue) pairs share a key: in the prefix, `%`, `{`, `}` and `:` are escaped
 * (`%XX`), so the first `:` of a tag ends the prefix; in the queue name, `%`, `{` and `}` are,
 * so the first `}` ends the tag. A queue tag always holds a `:`, the instance tag never does.
 */
import { scriptKeys, type ScriptName } from './scripts.ts'

function escape (name: string, pattern: RegExp): string {
  pattern.lastIndex = 0
  return pattern.test(name) ? name.replace(pattern, c => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) : name
}

const PREFIX_SPECIALS = /[%{}:]/g
const NAME_SPECIALS = /[%{}]/g

/** Escapes glob characters for a SCAN MATCH pattern. */
function glob (text: string): string {
  return text.replace(/[*?[\]\\]/g, c => `\\${c}`)
}

/** The keys of a storage instance (its key prefix) beyond its queues. */
export class PrefixKeys {
  /** The prefix as it appears in every tag. */
  readonly tag: string
  /** SET of the names of the queues that hold something (queues() reads it; no SCAN). */
  readonly queues: string

  constructor (prefix: string) {
    this.tag = escape(prefix, PREFIX_SPECIALS)
    this.queues = `{${this.tag}}:queues`
  }

  /** The key of a lock (reaper leader election). */
  lock (name: string): string {
    return `{${this.tag}}:lock:${name}`
  }

  /** SCAN patterns matching every key of this prefix: its queues' and its own. */
  get patterns (): string[] {
    return [`{${glob(this.tag)}:*`, `{${glob(this.tag)}}:*`]
  }
}

/** The keys and channels of one queue. */
export class QueueKeys {
  /** HASH id → the job's record, with its result or last error (see src/scripts/_lib.lua). */
  readonly jobs: string
  /** HASH id → payload, while the job is active or in history. */
  readonly payloads: string
  /** HASH id → the job's ended attempts. */
  readonly attempts: string
  /** HASH id → tokens of the storage instances waiting for the job's outcome. */
  readonly waiters: string
  /** LIST of ready elements, oldest first (empty while paused). */
  readonly ready: string
  /** LIST of ready elements while the queue is paused. */
  readonly held: string
  /** LIST of elements taken by a blocking BLMOVE and not yet claimed by claim.lua. */
  readonly claiming: string
  /** HASH id → when the reaper first saw the id in `claiming` (ms). */
  readonly seen: string
  /** ZSET of delayed and failing jobs by due time (ms). */
  readonly due: string
  /** ZSET of processing jobs by lease deadline (ms): also the set of processing jobs (see _lib.lua). */
  readonly leases: string
  /** ZSETs of the jobs of each state but `processing` by stamp (terminal: in history). */
  readonly queued: string
  readonly delayed: string
  readonly failing: string
  readonly completed: string
  readonly failed: string
  readonly cancelled: string
  /** ZSET of terminal jobs out of history whose result cache lives, by its end (ms). */
  readonly expires: string
  /** HASH: last stamp, paused flag, retention, totals. */
  readonly meta: string
  /** HASH failure group key → failed jobs in history. */
  readonly groups: string
  /** HASH failure group key → name, message, frame (JSON). */
  readonly groupinfo: string
  /** ZSET (lex) of failed jobs by failure group and stamp. */
  readonly bygroup: string
  /** HASH worker id → its info (JSON). */
  readonly workers: string
  /** ZSET worker id → when its registration expires (ms). */
  readonly beats: string
  /** Channel of abort and wake-up notices, heard by consumers. */
  readonly control: string
  /** Prefix of the per-instance reply channels: `<replyPrefix><token>`. */
  readonly replyPrefix: string
  readonly #byScript = new Map<ScriptName, readonly Buffer[]>()

  constructor (prefix: PrefixKeys, queue: string) {
    const base = `{${prefix.tag}:${escape(queue, NAME_SPECIALS)}}:`
    this.jobs = base + 'jobs'
    this.payloads = base + 'payloads'
    this.attempts = base + 'attempts'
    this.waiters = base + 'waiters'
    this.ready = base + 'ready'
    this.held = base + 'held'
    this.claiming = base + 'claiming'
    this.seen = base + 'seen'
    this.due = base + 'due'
    this.leases = base + 'leases'
    this.queued = base + 'queued'
    this.delayed = base + 'delayed'
    this.failing = base + 'failing'
    this.completed = base + 'completed'
    this.failed = base + 'failed'
    this.cancelled = base + 'cancelled'
    this.expires = base + 'expires'
    this.meta = base + 'meta'
    this.groups = base + 'groups'
    this.groupinfo = base + 'groupinfo'
    this.bygroup = base + 'bygroup'
    this.workers = base + 'workers'
    this.beats = base + 'beats'
    this.control = base + 'control'
    this.replyPrefix = base + 'reply:'
  }

  /**
   * The KEYS of a script, in the order its header lists them (`index`: the given state's index),
   * encoded once: the hot scripts take about twenty.
   */
  for (script: ScriptName, index?: string): readonly Buffer[] {
    let keys = index === undefined ? this.#byScript.get(script) : undefined
    if (keys === undefined) {
      keys = scriptKeys(script).map(name => {
        const key = name === 'index' ? index : (this as unknown as Record<string, unknown>)[name]
        if (typeof key !== 'string') throw new Error(`No key ${name} for script ${script}`)
        return Buffer.from(key)
      })
      if (index === undefined) this.#byScript.set(script, keys)
    }
    return keys
  }

  /** Every key this queue may create (for cleanup and tests). */
  get all (): string[] {
    return [
      this.jobs, this.payloads, this.attempts, this.waiters, this.ready, this.held, this.claiming,
      this.seen, this.due, this.leases, this.queued, this.delayed, this.failing, this.completed,
      this.failed, this.cancelled, this.expires, this.meta, this.groups, this.groupinfo, this.bygroup, this.workers, this.beats
    ]
  }
}
