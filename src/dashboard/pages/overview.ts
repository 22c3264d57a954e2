/** The overview: every queue × state, oldest waiting age, workers, warnings, and the rate chart. */
import { count, formatDuration, html, time, type SafeHtml } from '../html.ts'
import type { Snapshot } from '../sampler.ts'
import { STATES } from '../../storage/job-record.ts'
import { actionButton, url, type Page, type PageContext } from './layout.ts'

/** The overview page from a snapshot. */
export function overviewPage (ctx: PageContext, snap: Snapshot): Page {
  return {
    title: 'Overview',
    chart: true,
    head: html`<section class="chart-box">
  <h2>Jobs per minute (all queues)</h2>
  <div id="chart" data-series="${JSON.stringify(snap.series)}"></div>
</section>`,
    live: overviewLive(ctx, snap)
  }
}

function overviewLive (ctx: PageContext, snap: Snapshot): SafeHtml {
  const warnings = snap.queues.flatMap(q => q.warnings.map(w => ({ queue: q.name, text: w })))
  const workers = snap.queues.flatMap(q => q.workers.map(w => ({ queue: q.name, ...w })))
  return html`${warnings.length > 0 && html`<ul class="warnings">${warnings.map(w => html`<li class="warning"><a href="${url(ctx, 'queues', w.queue)}">${w.queue}</a>: ${w.text}</li>`)}</ul>`}
<section>
<h2>Queues</h2>
${snap.queues.length === 0
  ? html`<p class="empty">No queue holds anything yet.</p>`
  : html`<table class="grid queues">
<thead><tr><th>queue</th>${STATES.map(s => html`<th class="num">${s}</th>`)}<th class="num">oldest waiting</th><th class="num">workers</th><th></th></tr></thead>
<tbody>
${snap.queues.map(q => html`<tr data-queue="${q.name}" class="${q.paused ? 'paused' : ''}">
  <td><a href="${url(ctx, 'queues', q.name)}">${q.name}</a>${q.paused && html` <span class="badge warn">paused</span>`}</td>
  ${STATES.map(s => html`<td class="num"><a href="${url(ctx, 'queues', q.name)}?state=${s}" data-count="${s}">${count(q.counts[s])}</a></td>`)}
  <td class="num">${q.oldestWaitingAge === null ? '—' : formatDuration(q.oldestWaitingAge)}</td>
  <td class="num">${q.workers.length}</td>
  <td>${q.paused
    ? actionButton(ctx, 'Resume', { action: 'resume', queue: q.name })
    : actionButton(ctx, 'Pause', { action: 'pause', queue: q.name })}</td>
</tr>`)}
</tbody>
</table>`}
</section>
<section>
<h2>Workers</h2>
${workers.length === 0
  ? html`<p class="empty">No live consumer.</p>`
  : html`<table class="grid">
<thead><tr><th>queue</th><th>worker</th><th>host</th><th class="num">pid</th><th class="num">running</th><th>since</th><th>last heartbeat</th></tr></thead>
<tbody>${workers.map(w => html`<tr><td>${w.queue}</td><td>${w.id}</td><td>${w.host}</td><td class="num">${w.pid}</td>
<td class="num">${w.running} / ${w.concurrency}</td><td>${time(w.startedAt)}</td><td>${time(w.lastSeen)}</td></tr>`)}</tbody>
</table>`}
</section>
<p class="muted">Sampled ${time(snap.at)}.</p>`
}
