/**
 * The statements PgStorage sends, and how their rows become contract values. Every statement
 * names its tables through {@link Names}; every value is a parameter.
 */
import type {
  AttemptRecord, ClaimedJob, FailureGroup, JobDetail, JobRecord, JobState, JobSummary, QueueOverview, Retention, StateCounts,
  WorkerEntry
} from '../types.ts'
import { DEFAULT_RETENTION, HISTORY_LIMIT } from '../job-record.ts'
import type { Names } from './names.ts'
import { validTrace } from '../../trace-context.ts'

/** States as the database stores them (one "char"), in the order of the counters array. */
export const STATE_CODES = 'qdpfcex'
const STATE_NAMES: readonly JobState[] = ['queued', 'delayed', 'processing', 'failing', 'completed', 'failed', 'cancelled']

export function stateName (code: string): JobState {
  return STATE_NAMES[STATE_CODES.indexOf(code)]
}

export function stateCode (state: JobState): string {
  return STATE_CODES[STATE_NAMES.indexOf(state)]
}

/** One statement: its text, and the name under which each connection prepares it once. */
export interface Statement {
  readonly name: string
  readonly text: string
}

/** Every statement of one namespace. */
export function statements (n: Names): Record<string, Statement> {
  const jobs = n.of('jobs')
  const fn = (name: string): string => n.of(name)
  const summary = 'j.id, j.state, j.stamp, j.entered_at, j.created_at, j.attempts, j.max_attempts, j.due_at, j.worker, j.lease_until, j.error, j.grp'
  const texts: Record<string, string> = {
    enqueue: `SELECT * FROM ${fn('enqueue')}($1, $2, $3, $4::bytea[], $5::bytea[], $6::integer[], $7::bigint[], $8::bigint[], $9::bigint[], $10::boolean[], $11::text[])`,
    enqueueTx: `SELECT * FROM ${fn('enqueue_tx')}($1, $2, $3::bytea[], $4::bytea[], $5::integer[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[])`,
    claim: `SELECT * FROM ${fn('claim')}($1, $2, $3, $4, $5, $6, $7)`,
    settle: `SELECT * FROM ${fn('settle')}($1, $2, $3, $4::"char"[], $5::bytea[], $6::integer[], $7::bytea[], $8::bigint[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[], $13, $14, $15, $16)`,
    unpark: `DELETE FROM ${fn('parked')} WHERE token = $1`,
    // A worker ending its wait: mx 0 in the answer means an enqueue handed it jobs meanwhile.
    unparkWorker: `DELETE FROM ${fn('parked')} WHERE queue = $1 AND worker = $2 RETURNING mx`,
    extend: `SELECT * FROM ${fn('extend')}($1, $2, $3, $4::bytea[], $5)`,
    cancel: `SELECT ${fn('cancel')}($1, $2, $3, $4, $5)`,
    ttl: `SELECT ${fn('ttl')}($1, $2, $3, $4)`,
    status: `SELECT state, created_at, attempts, max_attempts, result, error FROM ${jobs}
      WHERE k = ${fn('key')}($1, $2) AND (expires_at IS NULL OR expires_at > $3)
      UNION ALL SELECT 'q', 0, 0, max_attempts, NULL, NULL FROM ${fn('inbox')} WHERE queue = $1 AND id = $2 LIMIT 1`,
    recover: `SELECT * FROM ${fn('recover')}($1, $2, $3, $4, $5, $6, $7, $8)`,
    lock: `SELECT ${fn('lock')}($1, $2, $3, $4)`,
    unlock: `DELETE FROM ${fn('locks')} WHERE name = $1 AND owner = $2`,
    counts: `SELECT ${fn('counts')}($1, $2)`,
    heartbeat: `SELECT ${fn('heartbeat')}($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    queues: `SELECT x.queue, x.paused, ${fn('counts')}(x.queue, $1) FROM ${fn('queues')} x
      WHERE x.paused OR x.retention IS NOT NULL
        OR EXISTS (SELECT 1 FROM ${fn('lanes')} l WHERE l.queue = x.queue AND l.totals <> '{0,0,0,0,0,0}')
        OR EXISTS (SELECT 1 FROM ${jobs} j WHERE j.queue = x.queue)
        OR EXISTS (SELECT 1 FROM ${fn('workers')} w WHERE w.queue = x.queue)
      ORDER BY x.queue`,
    overview: `SELECT x.paused, x.retention,
        (SELECT ARRAY[sum(l.totals[1]), sum(l.totals[2]), sum(l.totals[3]), sum(l.totals[4]), sum(l.totals[5]), sum(l.totals[6])]::bigint[]
          FROM ${fn('lanes')} l WHERE l.queue = x.queue),
        ${fn('counts')}(x.queue, $2),
        (SELECT j.entered_at FROM ${jobs} j WHERE j.queue = x.queue AND j.state = 'q' ORDER BY j.stamp LIMIT 1)
      FROM ${fn('queues')} x WHERE x.queue = $1`,
    // $3: the state; the lower bound is the history floor for terminal states.
    listAsc: `SELECT ${summary} FROM ${jobs} j WHERE j.queue = $1 AND j.state = $2
        AND j.stamp >= (SELECT CASE WHEN $2 IN ('c', 'e', 'x') THEN ${fn('efloor')}($1, $2, $3) ELSE -9223372036854775807 END)
        AND j.stamp > coalesce($4, -9223372036854775807)
      ORDER BY j.stamp LIMIT $5`,
    listDesc: `SELECT ${summary} FROM ${jobs} j WHERE j.queue = $1 AND j.state = $2
        AND j.stamp >= (SELECT CASE WHEN $2 IN ('c', 'e', 'x') THEN ${fn('efloor')}($1, $2, $3) ELSE -9223372036854775807 END)
        AND j.stamp < coalesce($4, 9223372036854775807)
      ORDER BY j.stamp DESC LIMIT $5`,
    getJob: `SELECT ${summary}, j.payload, j.result_ttl, j.delay, j.run_timeout, j.started_at, j.finished_at, j.expires_at, j.result,
        j.stalls, j.cancel_requested, coalesce(cardinality(j.waiters), 0), j.ready_at, j.retries, j.history, j.last_outcome,
        j.attempt_started_at,
        CASE WHEN j.state = 'q' THEN (SELECT count(*) FROM ${jobs} a WHERE a.queue = j.queue AND a.state = 'q' AND a.stamp < j.stamp) END,
        j.state NOT IN ('c', 'e', 'x') OR j.stamp >= ${fn('efloor')}(j.queue, j.state, $3)
      FROM ${jobs} j WHERE j.k = ${fn('key')}($1, $2)`,
    apply: `SELECT * FROM ${fn('apply')}($1, $2, $3, $4::bytea[], $5, $6, $7, $8, $9, $10, $11)`,
    pause: `SELECT ${fn('pause')}($1, $2)`,
    retain: `SELECT ${fn('retain')}($1, $2, $3::bigint[])`,
    groups: `WITH h AS (
        SELECT j.grp, j.id, j.entered_at, j.stamp FROM ${jobs} j
        WHERE j.queue = $1 AND j.state = 'e' AND j.grp IS NOT NULL AND j.stamp >= (SELECT ${fn('efloor')}($1, 'e', $2))),
      g AS (
        SELECT h.grp, count(*) AS c, (array_agg(h.entered_at ORDER BY h.stamp))[1] AS first_seen,
          (array_agg(h.entered_at ORDER BY h.stamp DESC))[1] AS last_seen, (array_agg(h.id ORDER BY h.stamp DESC))[1:5] AS samples
        FROM h GROUP BY h.grp)
      SELECT g.grp, m.name, m.message, m.frame, g.c, g.first_seen, g.last_seen, g.samples
      FROM g JOIN ${fn('groups')} m ON m.queue = $1 AND m.key = g.grp
      ORDER BY g.c DESC, g.last_seen DESC, g.grp LIMIT $3`,
    workers: `SELECT id, host, pid, concurrency, running, started_at, last_seen, expires_at FROM ${fn('workers')}
      WHERE queue = $1 AND expires_at > $2 ORDER BY id`,
    clear: `TRUNCATE ${jobs}, ${fn('queues')}, ${fn('lanes')}, ${fn('groups')}, ${fn('workers')}, ${fn('locks')}, ${fn('inbox')}, ${fn('parked')}`,
    deadTuples: `SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = '${jobs}'::regclass`,
    vacuum: `VACUUM (ANALYZE) ${jobs}, ${fn('queues')}, ${fn('lanes')}, ${fn('parked')}`
  }
  const out: Record<string, Statement> = {}
  for (const [key, text] of Object.entries(texts)) out[key] = { name: `relayq_${n.channel}_${key}`, text }
  return out
}

type Row = unknown[]

const EMPTY = Buffer.alloc(0)

/** A row of the `claimed` type as a job (the meta row is told apart by its NULL id). */
export function toClaimed (row: Row): ClaimedJob {
  const job: ClaimedJob = {
    id: (row[0] as Buffer).toString(),
    payload: row[1] as Buffer ?? EMPTY,
    attempts: row[2] as number,
    maxAttempts: row[3] as number,
    resultTTL: row[4] as number,
    createdAt: row[5] as number,
    runTimeout: row[6] as number,
    readyAt: row[7] as number
  }
  if (row[10] === null) return job
  // Stored data is untrusted: checked again on read, a bad one left out.
  const trace = validTrace(row[10])
  return trace === undefined ? job : { ...job, trace }
}

export function toRecord (id: string, row: Row): JobRecord {
  const result = row[4] as Buffer | null
  const error = row[5] as Buffer | null
  return {
    id,
    state: stateName(row[0] as string),
    createdAt: row[1] as number,
    attempts: row[2] as number,
    maxAttempts: row[3] as number,
    ...(result !== null && { result }),
    ...(error !== null && { error })
  }
}

/** Counters array (q d p f c e x) as StateCounts. */
export function toCounts (n: readonly number[]): StateCounts {
  return {
    queued: n[0],
    delayed: n[1],
    processing: n[2],
    failing: n[3],
    completed: n[4],
    failed: n[5],
    cancelled: n[6]
  }
}

export function toRetention (ret: readonly number[] | null): Retention {
  if (ret === null) return DEFAULT_RETENTION
  return {
    completed: { age: ret[0], count: ret[1] },
    failed: { age: ret[2], count: ret[3] },
    cancelled: { age: ret[4], count: ret[5] }
  }
}

export function fromRetention (r: Retention): number[] {
  return [r.completed.age, r.completed.count, r.failed.age, r.failed.count, r.cancelled.age, r.cancelled.count]
}

/** An overview row: paused, retention, totals, counts, oldest queued. */
export function toOverview (row: Row | undefined): QueueOverview {
  if (row === undefined) {
    return {
      counts: toCounts([0, 0, 0, 0, 0, 0, 0]),
      paused: false,
      oldestQueuedAt: null,
      totals: { enqueued: 0, completed: 0, failed: 0, retried: 0, stalled: 0, cancelled: 0 },
      retention: DEFAULT_RETENTION
    }
  }
  const t = row[2] as number[]
  return {
    counts: toCounts(row[3] as number[]),
    paused: row[0] as boolean,
    oldestQueuedAt: row[4] as number | null,
    totals: { enqueued: t[0], completed: t[1], failed: t[2], retried: t[3], stalled: t[4], cancelled: t[5] },
    retention: toRetention(row[1] as number[] | null)
  }
}

/** A list row (see the `summary` columns). */
export function toSummary (row: Row): JobSummary {
  const state = stateName(row[1] as string)
  const s: { -readonly [K in keyof JobSummary]: JobSummary[K] } = {
    id: (row[0] as Buffer).toString(),
    state,
    stamp: row[2] as number,
    enteredAt: row[3] as number,
    createdAt: row[4] as number,
    attempts: row[5] as number,
    maxAttempts: row[6] as number
  }
  if (state === 'delayed' || state === 'failing') s.dueAt = row[7] as number
  if (state === 'processing') {
    s.worker = (row[8] as Buffer).toString()
    s.leaseUntil = row[9] as number
  }
  const error = row[10] as Buffer | null
  if ((state === 'failed' || state === 'failing') && error !== null) s.error = error
  const group = row[11] as Buffer | null
  if (state === 'failed' && group !== null) s.group = group.toString()
  return s
}

interface StoredAttempt { a: number, s: number, f: number, w: string, o: NonNullable<AttemptRecord['outcome']>, e?: string }

function toAttempt (h: StoredAttempt): AttemptRecord {
  return {
    attempt: h.a,
    startedAt: h.s,
    finishedAt: h.f,
    worker: Buffer.from(h.w, 'base64').toString(),
    outcome: h.o,
    ...(h.e !== undefined && { error: Buffer.from(h.e, 'base64') })
  }
}

/** A getJob row, or null when the job is terminal and out of history. */
export function toDetail (row: Row): JobDetail | null {
  if (row[29] !== true) return null
  const s = toSummary(row)
  const state = s.state
  const terminal = state === 'completed' || state === 'failed' || state === 'cancelled'
  const stored = row[25] as StoredAttempt[] | null
  const history: AttemptRecord[] = stored === null ? [] : stored.map(toAttempt)
  const lastOutcome = row[26] as string
  const attemptStartedAt = row[27] as number
  const worker = (row[8] as Buffer).toString()
  if (terminal && lastOutcome !== '') {
    const error = row[10] as Buffer | null
    history.push({
      attempt: s.attempts,
      startedAt: attemptStartedAt,
      finishedAt: row[17] as number,
      worker,
      outcome: lastOutcome as NonNullable<AttemptRecord['outcome']>,
      ...(lastOutcome === 'failed' && error !== null && { error })
    })
  }
  if (state === 'processing') history.push({ attempt: s.attempts, startedAt: attemptStartedAt, worker })
  if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT)
  const startedAt = row[16] as number
  const result = row[19] as Buffer | null
  const ahead = row[28] as number | null
  return {
    ...s,
    payload: row[12] as Buffer,
    resultTTL: row[13] as number,
    delay: row[14] as number,
    runTimeout: row[15] as number,
    ...(startedAt > 0 && { startedAt }),
    ...(terminal && { finishedAt: row[17] as number, resultExpiresAt: row[18] as number }),
    ...(state === 'completed' && result !== null && { result }),
    stalls: row[20] as number,
    cancelRequested: row[21] as boolean,
    waiters: row[22] as number,
    ...(ahead !== null && { ahead }),
    readyAt: row[23] as number,
    retries: row[24] as number,
    history
  }
}

export function toGroup (row: Row): FailureGroup {
  return {
    key: (row[0] as Buffer).toString(),
    name: (row[1] as Buffer).toString(),
    message: (row[2] as Buffer).toString(),
    frame: (row[3] as Buffer).toString(),
    count: row[4] as number,
    firstSeen: row[5] as number,
    lastSeen: row[6] as number,
    samples: (row[7] as Buffer[]).map(id => id.toString())
  }
}

export function toWorker (row: Row): WorkerEntry {
  return {
    id: (row[0] as Buffer).toString(),
    host: (row[1] as Buffer).toString(),
    pid: row[2] as number,
    concurrency: row[3] as number,
    running: row[4] as number,
    startedAt: row[5] as number,
    lastSeen: row[6] as number,
    expiresAt: row[7] as number
  }
}
