/**
 * relayq's web dashboard (`import { createDashboard } from 'relayq/dashboard'`): a plain
 * `(req, res)` handler for node:http that shows queues, jobs, failures and callers through
 * {@link Admin}, and runs operator actions with a dry-run confirmation. Loaded only by programs
 * that import this subpath.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Admin } from '../admin.ts'
import { InvalidArgumentError } from '../errors.ts'
import type { Storage } from '../storage/types.ts'
import { Actions, BusyError, WRITE_ACTIONS, type DashboardAction } from './actions.ts'
import { asset } from './assets.ts'
import { html, type SafeHtml } from './html.ts'
import { LiveStreams, streamMessage } from './live.ts'
import { failuresPage } from './pages/failures.ts'
import { jobPage } from './pages/job.ts'
import { layout, type Page, type PageContext } from './pages/layout.ts'
import { overviewPage } from './pages/overview.ts'
import { loadJobs, parseQueueQuery, queuePage } from './pages/queue.ts'
import { RPC_SCAN, rpcPage } from './pages/rpc.ts'
import { Sampler } from './sampler.ts'
import { csrfProblem, ensureCsrfToken, securityHeaders } from './security.ts'

export type { DashboardAction } from './actions.ts'
export { mountFastify } from './adapters.ts'
export { basicAuth } from './security.ts'

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The Admin to go through (the dashboard never closes it). Give this or `storage`. */
  admin?: Admin<unknown, unknown>
  /** A storage to read (an Admin with JSON serdes is made for it, and closed by `handler.close()`). Give this or `admin`. */
  storage?: Storage
  /** Show everything, change nothing: write routes answer 403 and no button shows. @default false */
  readOnly?: boolean
  /**
   * Consulted on every request with what it would do: `view` for pages, streams and reads, the
   * action's name for writes (`retry`, `remove`, `cancel`, `promote`, `pause`, `resume`, `purge`).
   * False (or a rejection) answers 403. @default every request allowed
   */
  authorize?: (req: IncomingMessage, action: DashboardAction) => boolean | Promise<boolean>
  /** The path the dashboard is mounted at, e.g. `/admin/queues` (links and routes start with it). @default '' */
  basePath?: string
  /** How often counts are sampled for the pages and live streams, in ms, 100 to 60000 (one storage read per interval, whatever the number of tabs). @default 2000 */
  refreshInterval?: number
}

/** The handler: call it with node:http's request and response; `close()` ends streams and tasks (and the Admin it made). */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void
  close (): Promise<void>
}

/** Thrown for a request that names something that does not exist (answered 404). */
class NotFound extends Error {}
/** A request refused (answered 403). */
class Forbidden extends Error {}
/** A method a route does not take (answered 405). */
class MethodNotAllowed extends Error {
  readonly allow: string
  constructor (allow: string) { super(`Method not allowed: use ${allow}`); this.allow = allow }
}

const MAX_BODY = 1 << 20

/**
 * A dashboard handler for node:http (Express: `app.use(basePath, handler)`; Fastify:
 * {@link mountFastify}).
 *
 * @example
 * const dashboard = createDashboard({ storage, basePath: '/queues', readOnly: false })
 * http.createServer(dashboard).listen(3000, '127.0.0.1')
 */
export function createDashboard (options: DashboardOptions): DashboardHandler {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Expected dashboard options to be an object')
  if ((options.admin === undefined) === (options.storage === undefined)) throw new InvalidArgumentError('Expected exactly one of `admin` and `storage`')
  if (options.admin !== undefined && !(options.admin instanceof Admin)) throw new InvalidArgumentError('Expected `admin` to be an Admin')
  const readOnly = options.readOnly ?? false
  if (typeof readOnly !== 'boolean') throw new InvalidArgumentError('Expected `readOnly` to be a boolean')
  const authorize = options.authorize
  if (authorize !== undefined && typeof authorize !== 'function') throw new InvalidArgumentError('Expected `authorize` to be a function (req, action) => boolean')
  const base = normalizeBase(options.basePath ?? '')
  const interval = options.refreshInterval ?? 2000
  if (!Number.isInteger(interval) || interval < 100 || interval > 60_000) throw new InvalidArgumentError(`Expected \`refreshInterval\` to be an integer from 100 to 60000 (ms), got ${String(interval)}`)

  const ownAdmin = options.admin === undefined
  const admin = options.admin ?? new Admin({ storage: options.storage as Storage })
  const sampler = new Sampler(admin, interval)
  const streams = new LiveStreams(sampler, interval)
  const actions = new Actions(admin, () => sampler.invalidate())

  const allowed = async (req: IncomingMessage, action: DashboardAction): Promise<void> => {
    if (authorize === undefined) return
    let ok = false
    try {
      ok = await authorize(req, action) === true
    } catch {}
    if (!ok) throw new Forbidden(`Not allowed: ${action}`)
  }

  async function page (req: IncomingMessage, res: ServerResponse, self: string, params: URLSearchParams, build: (ctx: PageContext) => Promise<Page>): Promise<void> {
    const snap = await sampler.get()
    const ctx: PageContext = { base, readOnly, csrf: ensureCsrfToken(req, res, base), now: Date.now(), version: snap.version }
    const built = await build(ctx)
    if (params.get('fragment') === '1') return send(res, 200, 'text/html; charset=utf-8', built.live.value, { 'X-Relayq-Version': snap.version })
    send(res, 200, 'text/html; charset=utf-8', layout(ctx, built, self).value)
  }

  async function route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/'
    const parsed = new URL(raw, 'http://dashboard.invalid')
    let path = parsed.pathname
    if (base !== '') {
      if (path !== base && !path.startsWith(`${base}/`)) throw new NotFound('Not a dashboard path')
      path = path.slice(base.length)
    }
    const segs = path.split('/').filter(s => s !== '').map(decodeSegment)
    const params = parsed.searchParams
    const method = req.method ?? 'GET'
    const read = method === 'GET' || method === 'HEAD'
    // The page's own address for its refreshes, rebuilt from the decoded segments: a raw path such
    // as `//host/...` must never become a URL the client would fetch from another origin.
    const self = `${base}/${segs.map(encodeURIComponent).join('/')}${parsed.search}`

    // Writes: read-only first (nothing else is looked at), then CSRF, then authorize.
    if (segs[0] === 'api' && method === 'POST') {
      if (readOnly) throw new Forbidden('The dashboard is read-only')
      const problem = csrfProblem(req)
      if (problem !== null) throw new Forbidden(`Refused: ${problem}`)
      if (segs[1] === 'queues' && segs.length === 5 && segs[3] === 'actions' && WRITE_ACTIONS.has(segs[4] as string)) {
        const action = segs[4] as DashboardAction
        await allowed(req, action)
        const body = await readJson(req)
        const answer = await actions.run(segs[2] as string, action, body)
        return json(res, answer.dryRun || !('task' in answer) ? 200 : 202, answer)
      }
      if (segs[1] === 'tasks' && segs.length === 4 && segs[3] === 'stop') {
        const task = actions.task(segs[2] as string)
        if (task === undefined) throw new NotFound('No such task')
        await allowed(req, task.action)
        actions.stop(task.id)
        return json(res, 202, { stopping: true })
      }
      throw new NotFound('No such action')
    }
    if (isWriteRoute(segs)) throw readOnly ? new Forbidden('The dashboard is read-only') : new MethodNotAllowed('POST')
    if (!read) throw new MethodNotAllowed('GET, HEAD')

    if (segs[0] === 'assets' && segs.length === 2) return await serveAsset(req, res, segs[1] as string)
    await allowed(req, 'view')

    if (segs.length === 0) return await page(req, res, self, params, async ctx => overviewPage(ctx, await sampler.get()))
    if (segs[0] === 'queues' && segs.length >= 2) {
      const queue = segs[1] as string
      if (segs.length === 2) {
        const query = parseQueueQuery(params)
        return await page(req, res, self, params, async ctx => {
          const [snap, jobs] = await Promise.all([sampler.get(), loadJobs(admin, queue, query)])
          return queuePage(ctx, queue, snap.queues.find(q => q.name === queue), query, jobs)
        })
      }
      if (segs.length === 3 && segs[2] === 'goto') {
        const id = params.get('id')?.trim() ?? ''
        if (id === '') throw new InvalidArgumentError('Expected `id` to be a job id')
        res.statusCode = 303
        res.setHeader('Location', `${base}/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`)
        res.end()
        return
      }
      if (segs.length === 4 && segs[2] === 'jobs') {
        const id = segs[3] as string
        const [job, why] = await Promise.all([admin.getJob(queue, id), admin.explain(queue, id)])
        if (job === null) throw new NotFound(`No job ${JSON.stringify(id)} in queue ${JSON.stringify(queue)} (never enqueued, or past its retention)`)
        return await page(req, res, self, params, async ctx => jobPage(ctx, queue, job, why))
      }
      if (segs.length === 3 && segs[2] === 'failures') {
        const groups = await admin.failureGroups(queue)
        return await page(req, res, self, params, async ctx => failuresPage(ctx, queue, groups))
      }
      if (segs.length === 3 && segs[2] === 'rpc') {
        return await page(req, res, self, params, async ctx => {
          const [snap, waited] = await Promise.all([sampler.get(), waitingCalls(admin, queue)])
          return rpcPage(ctx, queue, snap.queues.find(q => q.name === queue), waited.jobs, waited.examined)
        })
      }
    }
    if (segs[0] === 'api') {
      if (segs[1] === 'events' && segs.length === 2) return await streams.open(req, res)
      if (segs[1] === 'overview' && segs.length === 2) {
        const snap = await sampler.get()
        return json(res, 200, { ...streamMessage(snap), queues: snap.queues })
      }
      if (segs[1] === 'tasks' && segs.length === 3) {
        const task = actions.task(segs[2] as string)
        if (task === undefined) throw new NotFound('No such task (unknown, or finished more than 10 minutes ago)')
        return json(res, 200, task)
      }
      if (segs[1] === 'queues' && segs.length === 4 && segs[3] === 'jobs') {
        return json(res, 200, await loadJobs(admin, segs[2] as string, parseQueueQuery(params)))
      }
      if (segs[1] === 'queues' && segs.length === 5 && segs[3] === 'jobs') {
        const job = await admin.getJob(segs[2] as string, segs[4] as string)
        if (job === null) throw new NotFound('No such job')
        return json(res, 200, job)
      }
    }
    throw new NotFound('No such page')
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    securityHeaders(res)
    route(req, res).catch(err => fail(req, res, err, base))
  }
  let closing: Promise<void> | undefined
  handler.close = (): Promise<void> => {
    closing ??= (async () => {
      streams.closeAll()
      actions.stopAll()
      if (ownAdmin) await admin.close()
    })()
    return closing
  }
  return handler
}

/** The routes only POST may use: a GET there is 405 (403 in read-only mode). */
function isWriteRoute (segs: readonly string[]): boolean {
  return segs[0] === 'api' && ((segs[1] === 'queues' && segs[3] === 'actions') || (segs[1] === 'tasks' && segs[3] === 'stop'))
}

/** Active jobs (newest processing, then queued, RPC_SCAN at most) with at least one waiting caller. */
async function waitingCalls (admin: Admin<unknown, unknown>, queue: string): Promise<{ jobs: Array<NonNullable<Awaited<ReturnType<Admin['getJob']>>>>, examined: number }> {
  const processing = await admin.listJobs(queue, { state: 'processing', limit: RPC_SCAN })
  const queued = processing.jobs.length < RPC_SCAN ? await admin.listJobs(queue, { state: 'queued', limit: RPC_SCAN - processing.jobs.length }) : { jobs: [] }
  const ids = [...processing.jobs, ...queued.jobs].map(j => j.id)
  const details = await Promise.all(ids.map(id => admin.getJob(queue, id)))
  return { jobs: details.filter(j => j !== null && j.waiters > 0) as Array<NonNullable<(typeof details)[number]>>, examined: ids.length }
}

function normalizeBase (basePath: unknown): string {
  if (typeof basePath !== 'string' || (basePath !== '' && !/^(\/[A-Za-z0-9._~-]+)*\/?$/.test(basePath))) {
    throw new InvalidArgumentError(`Expected \`basePath\` to be a path such as /admin/queues, got ${JSON.stringify(basePath)}`)
  }
  return basePath.replace(/\/+$/, '')
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new InvalidArgumentError('Expected the path to be well-formed (bad percent-encoding)')
  }
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new UnsupportedType('Expected Content-Type: application/json')
  // A framework (express.json(), Fastify) may have read the body already.
  const given = (req as { body?: unknown }).body
  let text: string
  if (given !== undefined && !Buffer.isBuffer(given) && typeof given !== 'string') return given
  if (given !== undefined) {
    text = given.toString()
  } else {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_BODY) throw new InvalidArgumentError(`Expected a request body of at most ${MAX_BODY} bytes`)
      chunks.push(chunk)
    }
    text = Buffer.concat(chunks).toString('utf8')
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new InvalidArgumentError('Expected the request body to be JSON')
  }
}

/** The body is not JSON (answered 415). */
class UnsupportedType extends Error {}

async function serveAsset (req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  const loading = asset(name)
  if (loading === undefined) throw new NotFound('No such asset')
  const file = await loading
  res.setHeader('ETag', file.etag)
  res.setHeader('Cache-Control', 'public, max-age=300')
  if (req.headers['if-none-match'] === file.etag) {
    res.statusCode = 304
    res.end()
    return
  }
  send(res, 200, file.type, file.body)
}

function send (res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.statusCode = status
  res.setHeader('Content-Type', type)
  if (!type.startsWith('text/css') && !type.startsWith('text/javascript')) res.setHeader('Cache-Control', 'no-store')
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  res.end(body)
}

function json (res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { base64: Buffer.from((v as { data: number[] }).data).toString('base64') }
    }
    return v
  }))
}

/** Answers an error: JSON for the API, a small page otherwise. Messages of unexpected errors are not shown. */
function fail (req: IncomingMessage, res: ServerResponse, err: unknown, base: string): void {
  let status = 500
  let message = 'Internal error: the storage or the dashboard failed (see the server log)'
  if (err instanceof InvalidArgumentError) [status, message] = [400, err.message]
  else if (err instanceof NotFound) [status, message] = [404, err.message]
  else if (err instanceof Forbidden) [status, message] = [403, err.message]
  else if (err instanceof MethodNotAllowed) {
    [status, message] = [405, err.message]
    if (!res.headersSent) res.setHeader('Allow', err.allow)
  } else if (err instanceof UnsupportedType) [status, message] = [415, err.message]
  else if (err instanceof BusyError) [status, message] = [429, err.message]
  else if (err !== null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') message += ` (${(err as { code: string }).code})`
  if (res.headersSent) {
    res.end()
    return
  }
  const path = new URL((req as { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://dashboard.invalid').pathname
  if (path.slice(base.length).startsWith('/api/') || req.method === 'POST') return json(res, status, { error: message, status })
  send(res, status, 'text/html; charset=utf-8', errorPage(base, status, message).value)
}

function errorPage (base: string, status: number, message: string): SafeHtml {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${status} · relayq</title>
<link rel="stylesheet" href="${base}/assets/dashboard.css"></head>
<body><header class="top"><a class="brand" href="${base}/">relayq</a></header>
<main><h1>${status}</h1><p class="error-message">${message}</p><p><a href="${base}/">Back to the overview</a></p></main></body></html>`
}
