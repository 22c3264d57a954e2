/**
 * The operator's side of the Redis backend (AdminStorage beyond the data path): overview and
 * counts, pages of a state, one job's detail, chunked actions, pause, retention, failure groups,
 * the worker registry, the queue registry and clear(). Each call is one script over the queue's
 * keys (setRetention: one per chunk), with bounded work; clear() alone scans.
 */
import { Cluster, type Redis } from 'iovalkey'
import { compareIds, DEFAULT_RETENTION, HISTORY_LIMIT, isTerminal } from '../job-record.ts'
import { FLAGS, readAttempts, readGroupInfo, readRecord, retentionArg, splitTraced, stateCode, toRetention, type RecordFields } from './codec.ts'
import { rethrow, type Connection } from './connection.ts'
import type { PrefixKeys, QueueKeys } from './keys.ts'
import type { Reply, Scripts } from './scripts.ts'
import type {
  AdminAction, ApplyOptions, ApplyOutcome, AttemptRecord, FailureGroup, JobDetail, JobPage, JobQuery, JobState, JobSummary,
  JobTarget, QueueOverview, QueueSummary, Retention, StateCounts, WorkerEntry, WorkerInfo
} from '../types.ts'

/** Most history entries one setRetention chunk trims per state. */
const RETENTION_CHUNK = 1000
/** Keys per UNLINK of clear(). */
const UNLINK_BATCH = 500

/** What the operator's side needs from its storage. */
export interface AdminHost {
  connection (): Connection | undefined
  /** The scripts, or a StorageError when not connected. */
  scripts (): Scripts
  keysOf (queue: string): QueueKeys
  readonly prefix: PrefixKeys
  clock (): number
  readonly inline: number
  /** Adds a queue to the registry before something is stored in it (undefined: it is already). */
  register (queue: string): Promise<unknown> | undefined
}

export class RedisAdmin {
  readonly #host: AdminHost

  constructor (host: AdminHost) {
    this.#host = host
  }

  async overview (queue: string): Promise<QueueOverview> {
    return (await this.#overview(queue)).overview
  }

  /** The overview, and whether the queue holds anything at all (jobs, history, settings, totals, workers). */
  async #overview (queue: string): Promise<{ overview: QueueOverview, holds: boolean }> {
    const k = this.#host.keysOf(queue)
    const reply: Reply[] = await this.#host.scripts().overviewBuffer(k.for('overview'), [this.#host.clock()]).catch(rethrow('overview'))
    const n = (i: number): number => reply[i] as number
    const counts: StateCounts = { queued: n(0), delayed: n(1), processing: n(2), failing: n(3), completed: n(4), failed: n(5), cancelled: n(6) }
    const stored = reply[9] as Buffer
    const overview: QueueOverview = {
      counts,
      paused: n(7) === 1,
      oldestQueuedAt: n(8) >= 0 ? n(8) : null,
      totals: { enqueued: n(10), completed: n(11), failed: n(12), retried: n(13), stalled: n(14), cancelled: n(15) },
      retention: toRetention(stored.length > 0 ? stored : null, DEFAULT_RETENTION)
    }
    const holds = overview.paused || stored.length > 0 || n(16) > 0 || Object.values(counts).some(c => c > 0) ||
      Object.values(overview.totals).some(c => c > 0)
    return { overview, holds }
  }

  /** Every queue of the registry that holds anything, by name (one overview each, not atomic across queues). */
  async queues (): Promise<QueueSummary[]> {
    this.#host.scripts() // throws when not connected
    const connection = this.#host.connection() as Connection
    const names = (await connection.track(connection.client.smembers(this.#host.prefix.queues)).catch(rethrow('queues'))).sort(compareIds)
    const found = await Promise.all(names.map(async name => ({ name, ...await this.#overview(name) })))
    return found.filter(q => q.holds).map(({ name, overview }) => ({ name, counts: overview.counts, paused: overview.paused }))
  }

  async listJobs (queue: string, query: JobQuery): Promise<JobPage> {
    const k = this.#host.keysOf(queue)
    const index = query.state === 'processing' ? k.leases : k[query.state]
    const reply: Reply[] = await this.#host.scripts().listBuffer(k.for('list', index), [
      this.#host.clock(), stateCode(query.state), query.order, query.after === undefined ? '' : String(query.after), query.limit
    ]).catch(rethrow('listJobs'))
    const jobs: JobSummary[] = []
    for (let i = 2; i < reply.length; i += 5) {
      const at = (reply[i + 4] as Buffer).toString()
      jobs.push(summary((reply[i] as Buffer).toString(), Number((reply[i + 1] as Buffer).toString()), readRecord(reply[i + 2] as Buffer),
        reply[i + 3] as Buffer, at === '' ? undefined : Number(at)))
    }
    const last = (reply[1] as Buffer).toString()
    return { jobs, next: reply[0] === 1 && last !== '' ? Number(last) : null }
  }

  async getJob (queue: string, id: string): Promise<JobDetail | null> {
    const k = this.#host.keysOf(queue)
    const reply: Reply[] = await this.#host.scripts().jobBuffer(k.for('job'), [id, this.#host.clock()]).catch(rethrow('getJob'))
    if (reply.length === 0) return null
    const [record, stored, attempts, waiters, ahead, due] = reply as [Buffer, Buffer, Buffer, number, number, Buffer]
    const r = readRecord(record)
    // A traced job's stored payload starts with its trace context (see codec.ts `toElement`).
    const payload = (r.flags & FLAGS.traced) === 0 ? stored : splitTraced(stored).payload
    const body = r.body
    const at = due.toString()
    const terminal = isTerminal(r.state)
    const history = readAttempts(attempts.length > 0 ? attempts : null)
    if (terminal && r.lastOutcome !== '') {
      history.push({
        attempt: r.attempts,
        startedAt: r.attemptStartedAt,
        finishedAt: r.enteredAt,
        worker: r.worker,
        outcome: r.lastOutcome,
        ...(r.lastOutcome === 'failed' && hasOutcome(r) && { error: body })
      } satisfies AttemptRecord)
    }
    if (r.state === 'processing') history.push({ attempt: r.attempts, startedAt: r.attemptStartedAt, worker: r.worker })
    if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT)
    return {
      ...summary(id, r.stamp, r, body, at === '' ? undefined : Number(at)),
      payload,
      resultTTL: r.resultTTL,
      delay: r.delay,
      runTimeout: r.runTimeout,
      ...(r.startedAt > 0 && { startedAt: r.startedAt }),
      ...(terminal && { finishedAt: r.enteredAt, resultExpiresAt: r.expiresAt }),
      ...(r.state === 'completed' && { result: body }),
      stalls: r.stalls,
      cancelRequested: (r.flags & FLAGS.cancel) !== 0,
      waiters,
      ...(ahead >= 0 && { ahead }),
      readyAt: r.readyAt,
      retries: r.retries,
      history
    }
  }

  async apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome> {
    const k = this.#host.keysOf(queue)
    const args: Array<string | number> = [this.#host.clock(), action, options.dryRun ? 1 : 0, options.limit, k.replyPrefix, k.control, this.#host.inline]
    if ('ids' in target) {
      args.push('i', ...target.ids)
    } else {
      const bound = (n: number | undefined): string => n === undefined ? '' : String(n)
      args.push('s', stateCode(target.state), target.before === undefined ? '' : String(target.before * 1000),
        target.group ?? '', bound(target.after), bound(target.until))
    }
    const reply: Reply[] = await this.#host.scripts().applyBuffer(k.for('apply'), args).catch(rethrow('apply'))
    const next = (reply[2] as Buffer).toString()
    return {
      matched: reply[0] as number,
      changed: reply[1] as number,
      ...('ids' in target && { results: (reply[4] as Buffer[]).map(r => r.toString()) as ApplyOutcome['results'] }),
      next: next === '' ? null : Number(next),
      until: Number((reply[3] as Buffer).toString())
    }
  }

  async setPaused (queue: string, paused: boolean): Promise<void> {
    const k = this.#host.keysOf(queue)
    const scripts = this.#host.scripts()
    await this.#host.register(queue)
    await scripts.pause(k.for('pause'), [this.#host.clock(), paused ? 1 : 0, k.control]).catch(rethrow('setPaused'))
  }

  async setRetention (queue: string, retention: Retention): Promise<void> {
    const k = this.#host.keysOf(queue)
    const scripts = this.#host.scripts()
    await this.#host.register(queue)
    const arg = retentionArg(retention)
    // Bounded chunks until everything the new retention pushes out is trimmed.
    while (await scripts.retention(k.for('retention'), [this.#host.clock(), arg, RETENTION_CHUNK]).catch(rethrow('setRetention')) === 1);
  }

  async failureGroups (queue: string, limit: number): Promise<FailureGroup[]> {
    const k = this.#host.keysOf(queue)
    const reply: Reply[] = await this.#host.scripts().groupsBuffer(k.for('groups'), [this.#host.clock()]).catch(rethrow('failureGroups'))
    const groups: FailureGroup[] = []
    for (let i = 0; i < reply.length; i += 6) {
      groups.push({
        key: (reply[i] as Buffer).toString(),
        ...readGroupInfo(reply[i + 4] as Buffer),
        count: reply[i + 1] as number,
        firstSeen: reply[i + 2] as number,
        lastSeen: reply[i + 3] as number,
        samples: (reply[i + 5] as Buffer[]).map(id => id.toString())
      })
    }
    groups.sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen || compareIds(a.key, b.key))
    return groups.slice(0, limit)
  }

  async heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void> {
    const k = this.#host.keysOf(queue)
    const scripts = this.#host.scripts()
    const now = this.#host.clock()
    if (ttl > 0) await this.#host.register(queue)
    const { id, host, pid, concurrency, running, startedAt } = worker
    const info = JSON.stringify({ host, pid, concurrency, running, startedAt, lastSeen: now })
    await scripts.heartbeat(k.for('heartbeat'), [now, ttl, id, info]).catch(rethrow('heartbeat'))
  }

  async workers (queue: string): Promise<WorkerEntry[]> {
    const k = this.#host.keysOf(queue)
    const reply: string[] = await this.#host.scripts().workers(k.for('workers'), [this.#host.clock()]).catch(rethrow('workers'))
    const workers: WorkerEntry[] = []
    for (let i = 0; i < reply.length; i += 3) {
      let info: Record<string, unknown>
      try {
        info = JSON.parse(reply[i + 1])
      } catch {
        continue // not written by relayq
      }
      const n = (name: string): number => Number(info[name] ?? 0)
      workers.push({
        id: reply[i],
        host: String(info.host ?? ''),
        pid: n('pid'),
        concurrency: n('concurrency'),
        running: n('running'),
        startedAt: n('startedAt'),
        lastSeen: n('lastSeen'),
        expiresAt: Number(reply[i + 2])
      })
    }
    return workers.sort((a, b) => compareIds(a.id, b.id))
  }

  /** Deletes every key of the prefix: SCAN on every master, UNLINK in batches of one slot each. */
  async clear (): Promise<void> {
    const connection = this.#host.connection()
    if (connection === undefined) return
    const { client, track } = connection
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client as Redis]
    for (const node of nodes) {
      for (const pattern of this.#host.prefix.patterns) {
        let cursor = '0'
        do {
          const [next, keys] = await track(node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)).catch(rethrow('clear'))
          cursor = next
          // In a cluster, one command may only touch one slot: batch by hash tag.
          const bySlot = new Map<string, string[]>()
          for (const key of keys) {
            const tag = key.slice(0, key.indexOf('}') + 1)
            const batch = bySlot.get(tag)
            if (batch === undefined) bySlot.set(tag, [key])
            else batch.push(key)
          }
          for (const batch of bySlot.values()) {
            for (let i = 0; i < batch.length; i += UNLINK_BATCH) await track(node.unlink(...batch.slice(i, i + UNLINK_BATCH))).catch(rethrow('clear'))
          }
        } while (cursor !== '0')
      }
    }
  }
}

/** A record's body holds its result or last error. */
function hasOutcome (r: RecordFields): boolean {
  return (r.flags & FLAGS.outcome) !== 0
}

/** A list row, from a record and what list.lua / job.lua add to it. */
function summary (id: string, stamp: number, r: RecordFields, body: Buffer, at: number | undefined): JobSummary {
  const s: { -readonly [K in keyof JobSummary]: JobSummary[K] } = {
    id, state: r.state, stamp, enteredAt: r.enteredAt, createdAt: r.createdAt, attempts: r.attempts, maxAttempts: r.maxAttempts
  }
  const state: JobState = r.state
  if ((state === 'delayed' || state === 'failing') && at !== undefined) s.dueAt = at
  if (state === 'processing') {
    s.worker = r.worker
    if (at !== undefined) s.leaseUntil = at
  }
  if ((state === 'failed' || state === 'failing') && hasOutcome(r)) s.error = body
  if (state === 'failed' && r.group !== '') s.group = r.group
  return s
}
