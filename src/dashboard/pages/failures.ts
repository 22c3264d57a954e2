/** Failure groups of a queue: failed jobs by error name, normalized message and top frame, each a retry/delete selector. */
import type { FailureGroup } from '../../storage/types.ts'
import { count, html, time } from '../html.ts'
import { actionButton, url, type Page, type PageContext } from './layout.ts'

/** The failure groups page. */
export function failuresPage (ctx: PageContext, queue: string, groups: readonly FailureGroup[]): Page {
  return {
    title: `Failures of ${queue}`,
    queue,
    live: groups.length === 0
      ? html`<p class="empty">No failed job in history.</p>`
      : html`<section><table class="grid groups">
<thead><tr><th class="num">jobs</th><th>error</th><th>top frame</th><th>first seen</th><th>last seen</th><th>newest</th><th></th></tr></thead>
<tbody>${groups.map(g => html`<tr data-group="${g.key}">
<td class="num"><a href="${url(ctx, 'queues', queue)}?state=failed&amp;group=${g.key}">${count(g.count)}</a></td>
<td><strong>${g.name}</strong>: ${g.message}</td>
<td><code>${g.frame}</code></td>
<td>${time(g.firstSeen)}</td><td>${time(g.lastSeen)}</td>
<td>${g.samples.map(id => html`<a href="${url(ctx, 'queues', queue, 'jobs', id)}">${id}</a> `)}</td>
<td>${actionButton(ctx, 'Retry this group', { action: 'retry', queue, scope: 'state', state: 'failed', group: g.key })}
${actionButton(ctx, 'Delete this group', { action: 'remove', queue, scope: 'state', state: 'failed', group: g.key }, 'danger')}</td>
</tr>`)}</tbody>
</table></section>`
  }
}
