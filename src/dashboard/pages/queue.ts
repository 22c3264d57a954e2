/** A queue: its jobs per state with cursor paging, page size, go-to-id, filters and actions. */
import type { Admin, JobListItem } from '../../admin.ts'
import { InvalidArgumentError } from '../../errors.ts'
import type { JobState } from '../../storage/types.ts'
import { count, formatDuration, html, time, type SafeHtml } from '../html.ts'
import type { QueueSnapshot } from '../sampler.ts'
import { actionButton, url, type Page, type PageContext } from './layout.ts'
import { ACTION_STATES, STATES } from '../../storage/job-record.ts'

/** Page sizes offered (any 1 to 1000 is accepted in the URL). */
const PAGE_SIZES = [10, 25, 50, 100, 250, 1000]
/** Jobs examined at most for one page filtered by failure group (the rest is reached by its cursor). */
const FILTER_SCAN = 10_000

/** The actions that apply to a job in `state` (as Admin applies them), in the order the buttons show. */
export function actionsFor (state: JobState): Array<'retry' | 'remove' | 'cancel' | 'promote'> {
  return (['retry', 'promote', 'cancel', 'remove'] as const).filter(a => ACTION_STATES[a].includes(state))
}
/** Button labels of the job actions. */
export const LABELS = { retry: 'Retry', remove: 'Delete', cancel: 'Cancel', promote: 'Promote' } as const

/** The query of a queue page, validated. */
export interface QueueQuery {
  state: JobState
  limit: number
  order: 'asc' | 'desc'
  cursor?: string
  group?: string
}

/** Reads a queue page's query string; bad values throw InvalidArgumentError naming the parameter. */
export function parseQueueQuery (params: URLSearchParams): QueueQuery {
  const state = params.get('state') ?? 'queued'
  if (!(STATES as readonly string[]).includes(state)) throw new InvalidArgumentError(`Expected \`state\` to be one of ${STATES.join(', ')}, got ${state}`)
  const limitText = params.get('limit') ?? '50'
  const limit = Number(limitText)
  if (!/^\d+$/.test(limitText) || limit < 1 || limit > 1000) throw new InvalidArgumentError(`Expected \`limit\` to be an integer from 1 to 1000, got ${limitText}`)
  const order = params.get('order') ?? 'desc'
  if (order !== 'asc' && order !== 'desc') throw new InvalidArgumentError(`Expected \`order\` to be asc or desc, got ${order}`)
  const group = params.get('group') ?? ''
  if (group !== '' && (state !== 'failed' || !/^[0-9a-f]{16}$/.test(group))) throw new InvalidArgumentError('Expected `group` to be a failure group key (16 hex digits) with state=failed')
  const cursor = params.get('cursor') ?? ''
  return { state: state as JobState, limit, order, ...(cursor !== '' && { cursor }), ...(group !== '' && { group }) }
}

/** One page of jobs; filtered by failure group, it examines at most FILTER_SCAN jobs and answers the cursor to go on. */
export async function loadJobs (admin: Admin, queue: string, q: QueueQuery): Promise<{ jobs: JobListItem[], cursor: string | null }> {
  if (q.group === undefined) return await admin.listJobs(queue, { state: q.state, limit: q.limit, order: q.order, ...(q.cursor !== undefined && { cursor: q.cursor }) })
  const jobs: JobListItem[] = []
  let cursor = q.cursor ?? null
  let scanned = 0
  do {
    const page = await admin.listJobs(queue, { state: q.state, limit: 1000, order: q.order, ...(cursor !== null && { cursor }) })
    scanned += page.jobs.length
    for (const job of page.jobs) if (job.errorGroup === q.group) jobs.push(job)
    cursor = page.cursor
    // A page that overshoots the limit cannot be cut (the cursor is per storage page): show it whole.
  } while (cursor !== null && jobs.length < q.limit && scanned < FILTER_SCAN)
  return { jobs, cursor }
}

function link (ctx: PageContext, queue: string, q: Partial<QueueQuery>): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v))
  return `${url(ctx, 'queues', queue)}?${params.toString()}`
}

/** The queue page. `stats` is the queue in the last snapshot (undefined: the queue holds nothing). */
export function queuePage (ctx: PageContext, queue: string, stats: QueueSnapshot | undefined, q: QueueQuery, page: { jobs: JobListItem[], cursor: string | null }): Page {
  const keep = { state: q.state, limit: q.limit, order: q.order, group: q.group }
  const paused = stats?.paused ?? false
  return {
    title: `Queue ${queue}`,
    queue,
    head: html`<section class="controls">
<form method="get" action="${url(ctx, 'queues', queue, 'goto')}" class="inline">
  <label>Go to job id <input name="id" required maxlength="1024" autocomplete="off"></label> <button>Open</button>
</form>
<form method="get" action="${url(ctx, 'queues', queue)}" class="inline">
  <label>State <select name="state">${STATES.map(s => html`<option value="${s}"${s === q.state && html` selected`}>${s}</option>`)}</select></label>
  <label>Order <select name="order"><option value="desc"${q.order === 'desc' && html` selected`}>newest first</option><option value="asc"${q.order === 'asc' && html` selected`}>oldest first</option></select></label>
  <label>Per page <select name="limit">${[...new Set([...PAGE_SIZES, q.limit])].sort((a, b) => a - b).map(n => html`<option value="${n}"${n === q.limit && html` selected`}>${n}</option>`)}</select></label>
  ${q.group !== undefined && html`<label>Failure group <input name="group" value="${q.group}" size="16"></label>`}
  <button>Show</button>
</form>
${!ctx.readOnly && html`<div class="actions">
  ${paused ? actionButton(ctx, 'Resume queue', { action: 'resume', queue }) : actionButton(ctx, 'Pause queue', { action: 'pause', queue })}
  <span class="sep"></span>
  ${actionsFor(q.state).map(a => actionButton(ctx, `${LABELS[a]} selected`, { action: a, queue, scope: 'selection' }))}
  ${actionsFor(q.state).map(a => actionButton(ctx, `${LABELS[a]} all ${q.state}${q.group !== undefined ? ' of this group' : ''}`, { action: a, queue, scope: 'state', state: q.state, group: q.group }, a === 'remove' || a === 'cancel' ? 'danger' : ''))}
</div>
<form class="inline purge" data-queue="${queue}">
  <label>Purge <select name="state">${STATES.filter(s => s !== 'processing').map(s => html`<option value="${s}"${s === q.state && html` selected`}>${s}</option>`)}</select></label>
  <label>older than <input name="olderThan" placeholder="e.g. 1h, 7d (empty: all)" size="14" pattern="\\s*(\\d+\\s*(ms|s|m|h|d)?)?\\s*"></label>
  <button type="submit" class="danger">Purge…</button>
</form>`}
</section>`,
    live: html`${stats === undefined && html`<p class="empty">This queue holds nothing (no job, history, setting or worker).</p>`}
${(stats?.warnings ?? []).map(w => html`<p class="warning">${w}</p>`)}
<nav class="tabs">${STATES.map(s => html`<a href="${link(ctx, queue, { state: s, limit: q.limit, order: q.order })}" class="${s === q.state ? 'current' : ''}">${s} <span class="count" data-count="${s}">${count(stats?.counts[s] ?? 0)}</span></a>`)}</nav>
<p class="muted">${stats === undefined ? '' : html`Oldest waiting: ${stats.oldestWaitingAge === null ? 'none' : formatDuration(stats.oldestWaitingAge)} · workers: ${stats.workers.length} · enqueued ${count(stats.totals.enqueued)}, completed ${count(stats.totals.completed)}, failed ${count(stats.totals.failed)} since creation`}</p>
${jobTable(ctx, queue, q.state, page.jobs)}
<nav class="pager">
  ${q.cursor !== undefined && html`<a href="${link(ctx, queue, keep)}">« first page</a>`}
  ${page.cursor !== null && html`<a href="${link(ctx, queue, { ...keep, cursor: page.cursor })}" rel="next" class="next">next page »</a>`}
  ${q.group !== undefined && page.cursor !== null && page.jobs.length < q.limit && html`<span class="muted">(filtered: ${count(FILTER_SCAN)} jobs examined per page)</span>`}
</nav>`
  }
}

function jobTable (ctx: PageContext, queue: string, state: JobState, jobs: readonly JobListItem[]): SafeHtml {
  if (jobs.length === 0) return html`<p class="empty">No ${state} job${state === 'queued' ? ' waiting' : ''} on this page.</p>`
  const detail = (j: JobListItem): SafeHtml => {
    if (j.worker !== undefined) return html`held by ${j.worker} until ${time(j.leaseUntil)}`
    if (j.error !== undefined) return html`<span class="err">${j.error.name ?? 'Error'}: ${j.error.message}</span>`
    if (j.dueAt !== undefined) return html`due ${time(j.dueAt)}`
    return html``
  }
  return html`<table class="grid jobs">
<thead><tr>${!ctx.readOnly && html`<th><input type="checkbox" class="select-all" aria-label="select all"></th>`}<th>id</th><th>entered ${state}</th><th>created</th><th class="num">attempts</th><th>details</th>${state === 'failed' && html`<th>group</th>`}</tr></thead>
<tbody>${jobs.map(j => html`<tr data-id="${j.id}">
${!ctx.readOnly && html`<td><input type="checkbox" class="select" value="${j.id}" aria-label="select"></td>`}
<td class="id"><a href="${url(ctx, 'queues', queue, 'jobs', j.id)}">${j.id}</a></td>
<td>${time(j.enteredAt)}</td><td>${time(j.createdAt)}</td><td class="num">${j.attempts} / ${j.maxAttempts}</td>
<td>${detail(j)}</td>
${state === 'failed' && html`<td>${j.errorGroup === undefined ? '' : html`<a href="${url(ctx, 'queues', queue)}?state=failed&amp;group=${j.errorGroup}">${j.errorGroup}</a>`}</td>`}
</tr>`)}</tbody>
</table>`
}
