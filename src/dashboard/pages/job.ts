/** One job: payload and result as JSON, timeline, every attempt with its error and stack, lease, waiting callers, explain. */
import type { AttemptInfo, JobInfo } from '../../admin.ts'
import type { Explanation } from '../../admin-explain.ts'
import type { SerializedError } from '../../types.ts'
import { formatDuration, formatValue, html, time, type SafeHtml } from '../html.ts'
import { actionButton, url, type Page, type PageContext } from './layout.ts'
import { LABELS, actionsFor } from './queue.ts'

/** The job page. */
export function jobPage (ctx: PageContext, queue: string, job: JobInfo<unknown, unknown>, why: Explanation | null): Page {
  return {
    title: `Job ${job.id}`,
    queue,
    live: html`<p><span class="badge state-${job.state}">${job.state}</span>
${job.cancelRequested && html` <span class="badge warn">cancel requested</span>`}
${actionsFor(job.state).map(a => actionButton(ctx, LABELS[a], { action: a, queue, scope: 'ids', ids: JSON.stringify([job.id]) }, a === 'remove' || a === 'cancel' ? 'danger' : ''))}
</p>
${why !== null && html`<p class="explain">${why.text}</p>`}
<div class="cols">
<section>
<h2>Facts</h2>
<table class="facts">
<tr><th>queue</th><td><a href="${url(ctx, 'queues', queue)}">${queue}</a></td></tr>
<tr><th>attempts</th><td>${job.attempts} of ${job.maxAttempts}${job.stalls > 0 && html` (${job.stalls} stalled)`}${job.retries > 0 && html`, retried by an operator ${job.retries}×`}</td></tr>
<tr><th>in state since</th><td>${time(job.enteredAt)}</td></tr>
${job.dueAt !== undefined && html`<tr><th>due</th><td>${time(job.dueAt)}</td></tr>`}
${job.worker !== undefined && html`<tr><th>lease holder</th><td>${job.worker} until ${time(job.leaseUntil)}</td></tr>`}
<tr><th>waiting callers</th><td>${job.waiters} (processes waiting in enqueueAndWait)</td></tr>
${job.ahead !== undefined && html`<tr><th>jobs ahead</th><td>${job.ahead}</td></tr>`}
${job.errorGroup !== undefined && html`<tr><th>failure group</th><td><a href="${url(ctx, 'queues', queue)}?state=failed&amp;group=${job.errorGroup}">${job.errorGroup}</a></td></tr>`}
<tr><th>delay / run timeout / result TTL</th><td>${formatDuration(job.delay)} / ${job.runTimeout === 0 ? 'the consumer\'s' : formatDuration(job.runTimeout)} / ${formatDuration(job.resultTTL)}</td></tr>
${job.resultExpiresAt !== undefined && html`<tr><th>result cached until</th><td>${time(job.resultExpiresAt)}</td></tr>`}
</table>
</section>
<section>
<h2>Timeline</h2>
<ol class="timeline">${timeline(job).map(e => html`<li>${time(e.at)} ${e.text}</li>`)}</ol>
</section>
</div>
<section>
<h2>Payload</h2>
<pre class="json" id="payload">${formatValue(job.payload)}</pre>
</section>
${job.result !== undefined && html`<section><h2>Result</h2><pre class="json" id="result">${formatValue(job.result)}</pre></section>`}
${job.error !== undefined && html`<section><h2>Last error</h2>${errorBlock(job.error)}</section>`}
<section>
<h2>Attempts</h2>
${job.history.length === 0
  ? html`<p class="empty">No attempt yet.</p>`
  : html`<ol class="attempts">${job.history.map(attemptItem)}</ol>`}
</section>`
  }
}

function attemptItem (a: AttemptInfo): SafeHtml {
  return html`<li class="attempt outcome-${a.outcome ?? 'running'}">
<p>Attempt ${a.attempt}: <strong>${a.outcome ?? 'running'}</strong> on worker ${a.worker}, started ${time(a.startedAt)}${a.finishedAt !== undefined && html`, ended ${time(a.finishedAt)} (${formatDuration(a.durationMs ?? 0)})`}</p>
${a.error !== undefined && errorBlock(a.error)}
</li>`
}

function errorBlock (e: SerializedError): SafeHtml {
  return html`<div class="error"><p class="err"><strong>${e.name ?? 'Error'}</strong>${e.code !== undefined && html` [${e.code}]`}: ${e.message}</p>
${e.stack !== undefined && html`<pre class="stack">${e.stack}</pre>`}</div>`
}

function timeline (job: JobInfo<unknown, unknown>): Array<{ at: number, text: string }> {
  const events = [{ at: job.createdAt, text: 'enqueued' }]
  for (const a of job.history) {
    events.push({ at: a.startedAt, text: `attempt ${a.attempt} started on ${a.worker}` })
    if (a.finishedAt !== undefined) events.push({ at: a.finishedAt, text: `attempt ${a.attempt} ${a.outcome ?? 'ended'}${a.error !== undefined ? `: ${a.error.message}` : ''}` })
  }
  if (job.finishedAt !== undefined) events.push({ at: job.finishedAt, text: `finished ${job.state}` })
  else events.push({ at: job.enteredAt, text: `entered ${job.state}` })
  if (job.dueAt !== undefined) events.push({ at: job.dueAt, text: 'due' })
  if (job.resultExpiresAt !== undefined) events.push({ at: job.resultExpiresAt, text: 'result cache expires' })
  // Stable sort: at equal times the order above (cause before effect) stays.
  return events.sort((a, b) => a.at - b.at)
}
