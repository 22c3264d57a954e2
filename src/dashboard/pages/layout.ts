/** The frame of every page: head (assets, CSRF token), navigation, the live region and the confirmation dialog. */
import { html, type SafeHtml } from '../html.ts'

/** What every page renderer knows about the request. */
export interface PageContext {
  /** The dashboard's mount path ('' at the root). */
  base: string
  readOnly: boolean
  csrf: string
  /** Epoch ms of the request. */
  now: number
  /** The version of the snapshot the page shows: the client refreshes when the live stream announces another. */
  version: string
}

/** A rendered page: `live` is the region the client refreshes (`?fragment=1` answers it alone). */
export interface Page {
  title: string
  /** Which queue the page is about (for the navigation and the live stream). */
  queue?: string
  /** Above the live region: forms and controls that a refresh must not reset. */
  head?: SafeHtml
  live: SafeHtml
  /** The page draws the rate chart (loads uPlot). */
  chart?: boolean
}

/** `base + path` with each segment encoded: `url(ctx, 'queues', name)`. */
export function url (ctx: PageContext, ...segments: string[]): string {
  return `${ctx.base}/${segments.map(encodeURIComponent).join('/')}`
}

/** The whole HTML document of a page. */
export function layout (ctx: PageContext, page: Page, self: string): SafeHtml {
  const q = page.queue
  const assets = `${ctx.base}/assets`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="relayq-csrf" content="${ctx.csrf}">
<link rel="icon" href="data:,">
<title>${page.title} · relayq</title>
${page.chart === true && html`<link rel="stylesheet" href="${assets}/uPlot.min.css">`}
<link rel="stylesheet" href="${assets}/dashboard.css">
${page.chart === true && html`<script src="${assets}/uPlot.iife.min.js" defer></script>`}
<script src="${assets}/dashboard.js" defer></script>
</head>
<body data-base="${ctx.base}" data-read-only="${ctx.readOnly ? '1' : '0'}" data-self="${self}" data-events="${ctx.base}/api/events">
<header class="top">
  <a class="brand" href="${ctx.base}/">relayq</a>
  <nav>
    <a href="${ctx.base}/">Overview</a>
    ${q !== undefined && html`<span class="sep">/</span><a href="${url(ctx, 'queues', q)}">${q}</a>
    <a href="${url(ctx, 'queues', q, 'failures')}">Failures</a>
    <a href="${url(ctx, 'queues', q, 'rpc')}">RPC</a>`}
  </nav>
  ${ctx.readOnly && html`<span class="badge ro">read-only</span>`}
  <span id="live-status" class="live" title="live updates">connecting…</span>
</header>
<main>
<h1>${page.title}</h1>
${page.head}
<div id="live" data-version="${ctx.version}">${page.live}</div>
</main>
${!ctx.readOnly && html`<dialog id="confirm">
  <form method="dialog">
    <p id="confirm-text"></p>
    <p class="cmd-label">Same from a shell (with <code>RELAYQ_URL</code> set):</p>
    <pre id="confirm-command" class="cmd"></pre>
    <progress id="confirm-progress" max="1" value="0" hidden></progress>
    <p id="confirm-status" class="status"></p>
    <menu>
      <button type="button" id="confirm-cancel">Cancel</button>
      <button type="button" id="confirm-ok" class="danger">Confirm</button>
    </menu>
  </form>
</dialog>`}
</body>
</html>
`
}

/** A button that asks for a confirmation with a dry-run count, then runs an action (hidden in read-only mode). */
export function actionButton (ctx: PageContext, label: string, data: Record<string, string | undefined>, cls = ''): SafeHtml {
  if (ctx.readOnly) return html``
  const attrs = Object.entries(data).filter(([, v]) => v !== undefined).map(([k, v]) => html` data-${k}="${v}"`)
  return html`<button type="button" class="act ${cls}"${attrs}>${label}</button>`
}
