/**
 * The request/response panel: callers waiting now, from what Admin knows (the waiters of each
 * active job), and the queue's totals. Timed-out calls and the latency split need the RPC
 * instrumentation of the metrics work; the panel says so rather than show invented numbers.
 */
import type { JobInfo } from '../../admin.ts'
import { count, formatDuration, html, time } from '../html.ts'
import type { QueueSnapshot } from '../sampler.ts'
import { url, type Page, type PageContext } from './layout.ts'

/** Active jobs examined for waiting callers (the newest of processing, then of queued). */
export const RPC_SCAN = 100

/** The RPC panel. `waited`: active jobs with at least one waiting caller, among the RPC_SCAN examined. */
export function rpcPage (ctx: PageContext, queue: string, stats: QueueSnapshot | undefined, waited: ReadonlyArray<JobInfo<unknown, unknown>>, examined: number): Page {
  const callers = waited.reduce((n, j) => n + j.waiters, 0)
  return {
    title: `RPC of ${queue}`,
    queue,
    live: html`<section>
<h2>Callers waiting now</h2>
<p><strong id="waiting-callers">${count(callers)}</strong> caller process${callers === 1 ? ' waits' : 'es wait'} on ${count(waited.length)} job${waited.length === 1 ? '' : 's'} (among the ${count(examined)} newest running and queued jobs examined).</p>
${waited.length > 0 && html`<table class="grid">
<thead><tr><th>job</th><th>state</th><th class="num">waiting callers</th><th>enqueued</th><th class="num">waiting for</th><th>worker</th></tr></thead>
<tbody>${waited.map(j => html`<tr><td><a href="${url(ctx, 'queues', queue, 'jobs', j.id)}">${j.id}</a></td><td>${j.state}</td><td class="num">${j.waiters}</td>
<td>${time(j.createdAt)}</td><td class="num">${formatDuration(ctx.now - j.createdAt)}</td><td>${j.worker ?? '—'}</td></tr>`)}</tbody>
</table>`}
</section>
<section>
<h2>Totals since the queue was created</h2>
${stats === undefined
  ? html`<p class="empty">This queue holds nothing.</p>`
  : html`<p>enqueued ${count(stats.totals.enqueued)} · completed ${count(stats.totals.completed)} · failed ${count(stats.totals.failed)} · retried attempts ${count(stats.totals.retried)} · stalls ${count(stats.totals.stalled)} · cancelled ${count(stats.totals.cancelled)}</p>`}
</section>
<section>
<h2>Not shown yet</h2>
<p class="muted">Calls that timed out while their job ran on, and each call's latency split into queue wait, run and reply, are measured on the caller's side: they appear here once the RPC instrumentation (the <code>relayq_rpc_*</code> metrics) is connected to the dashboard.</p>
</section>`
  }
}
