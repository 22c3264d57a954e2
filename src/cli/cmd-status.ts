/** `relayq status`, `queues`, `workers`, `queue pause|resume`. */
import type { Admin } from '../admin.ts'
import type { StateCounts, WorkerEntry } from '../storage/types.ts'
import { STATES, type Context } from './commands.ts'
import { count, span, time, type Column } from './output.ts'

/** One row of `relayq status`. */
interface StatusRow {
  queue: string
  counts: StateCounts
  paused: boolean
  /** Ms the oldest queued job has waited; null when none. */
  oldestWaitingAge: number | null
  workers: number
}

const countColumns: Array<Column<{ counts: StateCounts }>> = STATES.map(state => ({
  header: state.toUpperCase(),
  right: true,
  get: r => count(r.counts[state]),
  color: r => r.counts[state] === 0 ? 'dim' : state === 'failed' ? 'red' : state === 'failing' ? 'yellow' : undefined
}))

async function statusRows (admin: Admin, only: readonly string[]): Promise<StatusRow[]> {
  const names = only.length > 0 ? only : (await admin.queues()).map(q => q.name)
  return await Promise.all(names.map(async queue => {
    const [stats, workers] = await Promise.all([admin.counts(queue), admin.workers(queue)])
    return { queue, counts: stats.counts, paused: stats.paused, oldestWaitingAge: stats.oldestWaitingAge, workers: workers.length }
  }))
}

export async function status (ctx: Context): Promise<number | undefined> {
  const admin = await ctx.admin()
  const out = ctx.out
  const columns: Array<Column<StatusRow>> = [
    { header: 'QUEUE', get: r => r.queue, flex: true },
    ...countColumns,
    { header: 'OLDEST', right: true, get: r => r.oldestWaitingAge === null ? '-' : span(r.oldestWaitingAge), color: r => (r.oldestWaitingAge ?? 0) > 60_000 ? 'yellow' : undefined },
    { header: 'WORKERS', right: true, get: r => String(r.workers), color: r => r.workers === 0 ? 'yellow' : undefined },
    { header: 'PAUSED', get: r => r.paused ? 'paused' : '-', color: r => r.paused ? 'yellow' : 'dim' }
  ]
  const print = (rows: StatusRow[]): void => {
    if (out.format === 'table' && rows.length === 0) out.note('No queue holds anything yet.')
    else out.rows(rows, columns)
  }
  const every = ctx.flags.watch as number | undefined
  if (every === undefined || every === 0) {
    print(await statusRows(admin, ctx.args))
    return
  }
  // --watch: redraw until Ctrl-C (on a terminal, in place; else one block per tick).
  let stop: () => void = () => {}
  const stopped = new Promise<void>(resolve => { stop = resolve })
  const off = ctx.onInterrupt(() => stop())
  try {
    for (;;) {
      const rows = await statusRows(admin, ctx.args)
      if (out.color) out.line('\u001b[H\u001b[2J')
      if (out.format === 'table') out.line(`${time(Date.now())}  (every ${span(every)}, Ctrl-C to stop)`)
      print(rows)
      let timer: ReturnType<typeof setTimeout> | undefined
      const tick = new Promise<boolean>(resolve => { timer = setTimeout(resolve, every, true) })
      const done = await Promise.race([tick, stopped.then(() => false)])
      clearTimeout(timer)
      if (!done) return
    }
  } finally {
    off()
  }
}

export async function queues (ctx: Context): Promise<number | undefined> {
  const list = await (await ctx.admin()).queues()
  ctx.out.rows(list, [
    { header: 'QUEUE', get: q => q.name, flex: true },
    { header: 'JOBS', right: true, get: q => count(STATES.reduce((n, s) => n + q.counts[s], 0)) },
    ...countColumns,
    { header: 'PAUSED', get: q => q.paused ? 'paused' : '-', color: q => q.paused ? 'yellow' : 'dim' }
  ])
  return undefined
}

export async function workers (ctx: Context): Promise<number | undefined> {
  const list = await (await ctx.admin()).workers(ctx.args[0])
  if (ctx.out.format === 'table' && list.length === 0) {
    ctx.out.note(`No live consumer for queue ${ctx.args[0]}.`)
    return undefined
  }
  const now = Date.now()
  ctx.out.rows(list, [
    { header: 'WORKER', get: (w: WorkerEntry) => w.id, flex: true },
    { header: 'HOST', get: w => w.host, flex: true },
    { header: 'PID', right: true, get: w => String(w.pid) },
    { header: 'RUNNING', right: true, get: w => `${w.running}/${w.concurrency}` },
    { header: 'UP', right: true, get: w => span(Math.max(0, now - w.startedAt)) },
    { header: 'SEEN', right: true, get: w => `${span(Math.max(0, now - w.lastSeen))} ago` }
  ])
  return undefined
}

export async function pause (ctx: Context): Promise<number | undefined> {
  await (await ctx.admin()).pause(ctx.args[0])
  ctx.out.value({ queue: ctx.args[0], paused: true }, () => ctx.out.line(`Paused ${ctx.args[0]}: consumers stop claiming (running jobs finish).`))
  return undefined
}

export async function resume (ctx: Context): Promise<number | undefined> {
  await (await ctx.admin()).resume(ctx.args[0])
  ctx.out.value({ queue: ctx.args[0], paused: false }, () => ctx.out.line(`Resumed ${ctx.args[0]}.`))
  return undefined
}
