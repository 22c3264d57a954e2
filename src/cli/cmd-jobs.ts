/** `relayq jobs ls`, `jobs show`, `failures`, `explain`. */
import type { JobListItem } from '../admin.ts'
import type { JobState } from '../storage/types.ts'
import type { Context } from './commands.ts'
import { UsageError } from './flags.ts'
import { count, replacer, span, time } from './output.ts'

/** The `--queue` flag, required. */
export function queueFlag (ctx: Context, command: string): string {
  const queue = ctx.flags.queue as string | undefined
  if (queue === undefined || queue === '') throw new UsageError(`${command}: --queue is required`)
  return queue
}

export async function list (ctx: Context): Promise<number | undefined> {
  const queue = queueFlag(ctx, 'jobs ls')
  const state = ctx.flags.state as JobState | undefined
  if (state === undefined) throw new UsageError('jobs ls: --state is required')
  const admin = await ctx.admin()
  const out = ctx.out
  const all = ctx.flags.all === true
  const now = Date.now()
  let cursor = ctx.flags.cursor as string | undefined
  const collected: JobListItem[] = []
  let first = true
  for (;;) {
    const page = await admin.listJobs(queue, { state, limit: ctx.flags.limit as number, order: ctx.flags.order as 'asc' | 'desc', ...(cursor !== undefined && { cursor }) })
    cursor = page.cursor ?? undefined
    if (out.format === 'ndjson') {
      // Streamed: each job as its page arrives.
      for (const job of page.jobs) out.line(JSON.stringify(job, replacer))
    } else if (out.format === 'table' && (all || first)) {
      if (first && page.jobs.length === 0) out.note(`No ${state} job in ${queue}.`)
      else {
        out.table(page.jobs, [
          { header: 'ID', get: j => j.id, flex: true },
          { header: 'STATE', get: j => j.state, color: j => j.state === 'failed' ? 'red' : j.state === 'completed' ? 'green' : undefined },
          { header: 'SINCE', right: true, get: j => span(Math.max(0, now - j.enteredAt)) },
          { header: 'ATTEMPTS', right: true, get: j => `${j.attempts}/${j.maxAttempts}` },
          { header: 'DUE/LEASE', get: j => j.dueAt !== undefined ? time(j.dueAt) : j.leaseUntil !== undefined ? `${j.worker ?? ''} until ${time(j.leaseUntil)}` : '' },
          { header: 'ERROR', get: j => j.error === undefined ? '' : `${j.error.name ?? 'Error'}: ${j.error.message}`, flex: true, color: () => 'red' }
        ])
      }
    } else {
      collected.push(...page.jobs)
    }
    first = false
    if (!all || cursor === undefined) break
  }
  if (out.format === 'json') out.line(JSON.stringify({ jobs: collected, cursor: cursor ?? null }, replacer, 2))
  if (cursor !== undefined && out.format !== 'json') {
    out.note(`More: relayq ${withFlag(ctx.argv, 'cursor', cursor).map(shellQuote).join(' ')}`)
  }
  return undefined
}

export async function show (ctx: Context): Promise<number | undefined> {
  const queue = queueFlag(ctx, 'jobs show')
  const id = ctx.args[0]
  const job = await (await ctx.admin()).getJob(queue, id)
  if (job === null) {
    ctx.out.note(`relayq: job ${id} not found in queue ${queue} (never enqueued, removed, or past its retention)`)
    return 1
  }
  const out = ctx.out
  out.value(job, () => {
    out.fields([
      ['id', job.id],
      ['state', out.paint(job.state, job.state === 'failed' ? 'red' : job.state === 'completed' ? 'green' : undefined)],
      ['attempts', `${job.attempts}/${job.maxAttempts}${job.retries > 0 ? ` (retried by an operator ${job.retries}×)` : ''}${job.stalls > 0 ? `, ${job.stalls} stall(s)` : ''}`],
      ['created', time(job.createdAt)],
      ['ready since', time(job.readyAt)],
      ['started', job.startedAt === undefined ? undefined : time(job.startedAt)],
      ['finished', job.finishedAt === undefined ? undefined : time(job.finishedAt)],
      ['due', job.dueAt === undefined ? undefined : time(job.dueAt)],
      ['lease', job.worker === undefined ? undefined : `${job.worker} until ${time(job.leaseUntil)}`],
      ['ahead', job.ahead === undefined ? undefined : count(job.ahead)],
      ['waiters', job.waiters > 0 ? String(job.waiters) : undefined],
      ['cancel', job.cancelRequested ? 'requested' : undefined],
      ['result TTL', `${span(job.resultTTL)}${job.resultExpiresAt === undefined ? '' : ` (until ${time(job.resultExpiresAt)})`}`],
      ['error group', job.errorGroup]
    ])
    out.line()
    out.line(out.paint('payload:', 'bold'))
    out.line(indent(pretty(job.payload)))
    if (job.result !== undefined) {
      out.line(out.paint('result:', 'bold'))
      out.line(indent(pretty(job.result)))
    }
    if (job.error !== undefined) {
      out.line(out.paint('error:', 'bold'))
      out.line(indent(out.paint(job.error.stack ?? `${job.error.name ?? 'Error'}: ${job.error.message}`, 'red')))
    }
    out.line(out.paint(`attempts (${job.history.length} newest):`, 'bold'))
    for (const a of job.history) {
      const took = a.durationMs === undefined ? 'running' : span(a.durationMs)
      out.line(`  #${a.attempt}  ${time(a.startedAt)}  ${took}  ${out.paint(a.outcome ?? 'running', a.outcome === 'failed' || a.outcome === 'stalled' ? 'red' : a.outcome === 'completed' ? 'green' : undefined)}  worker ${a.worker}`)
      if (a.error !== undefined) out.line(indent(out.paint(a.error.stack ?? `${a.error.name ?? 'Error'}: ${a.error.message}`, 'dim'), 6))
    }
  })
  return undefined
}

export async function failures (ctx: Context): Promise<number | undefined> {
  const queue = ctx.args[0]
  const groups = await (await ctx.admin()).failureGroups(queue, { limit: ctx.flags.limit as number })
  if (ctx.out.format === 'table' && groups.length === 0) {
    ctx.out.note(`No failed job in the history of ${queue}.`)
    return undefined
  }
  ctx.out.rows(groups, [
    { header: 'GROUP', get: g => g.key },
    { header: 'JOBS', right: true, get: g => count(g.count), color: () => 'red' },
    { header: 'ERROR', get: g => `${g.name}: ${g.message}`, flex: true },
    { header: 'AT', get: g => g.frame, flex: true },
    { header: 'LAST', get: g => time(g.lastSeen) }
  ])
  if (ctx.out.format === 'table') ctx.out.note(`Retry a group: relayq jobs retry -q ${shellQuote(queue)} --state failed --error-group <GROUP>`)
  return undefined
}

export async function explain (ctx: Context): Promise<number | undefined> {
  const [queue, id] = ctx.args
  const explanation = await (await ctx.admin()).explain(queue, id)
  if (explanation === null) {
    ctx.out.note(`relayq: job ${id} not found in queue ${queue}`)
    return 1
  }
  ctx.out.value(explanation, () => {
    ctx.out.line(`${explanation.id} (${explanation.state})`)
    for (const sentence of explanation.text.split(/(?<=\.) /)) ctx.out.line(`  - ${sentence}`)
  })
  return undefined
}

function pretty (value: unknown): string {
  if (Buffer.isBuffer(value)) return `<${value.length} bytes that do not decode: base64 ${value.toString('base64').slice(0, 120)}>`
  return value === undefined ? '(none)' : JSON.stringify(value, replacer, 2)
}

function indent (text: string, by = 2): string {
  return text.split('\n').map(line => ' '.repeat(by) + line).join('\n')
}

/** `argv` with `--<flag>` (and `-c` for cursor) replaced by `--<flag> value`: the command line that continues. */
export function withFlag (argv: readonly string[], flag: string, value: string): string[] {
  const names = new Set([`--${flag}`, ...(flag === 'cursor' ? ['-c'] : [])])
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (names.has(argv[i])) i++
    else if (!argv[i].startsWith(`--${flag}=`)) out.push(argv[i])
  }
  return [...out, `--${flag}`, value]
}

/** Quotes `text` for a POSIX shell when it needs it. */
export function shellQuote (text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, '\'\\\'\'')}'`
}
