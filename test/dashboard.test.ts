import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Admin, InvalidArgumentError, MemoryStorage, Producer, Queue } from '../src/index.ts'
import { createDashboard } from '../src/dashboard/index.ts'
import type { AdminStorage } from '../src/storage/types.ts'
import { serveDashboard, Session } from './fixtures/dashboard.ts'

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve = (): void => {}
  const promise = new Promise<void>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}

const HOSTILE_ID = '"><img src=x onerror=alert(1)>'
const HOSTILE = { html: '<script>alert(1)</script>', attr: '"><img src=x onerror=alert(2)>' }

/** A memory storage with failed, completed and queued jobs in queue `q`, and a hostile job. */
async function fixture (t: import('node:test').TestContext, failed = 3): Promise<{ storage: MemoryStorage, admin: Admin }> {
  const storage = new MemoryStorage()
  const queue = new Queue<Record<string, unknown>, unknown>({ storage, name: 'q', concurrency: 4, maxRetries: 1, reaper: false })
  t.after(() => queue.stop())
  queue.execute(async job => {
    if (job.payload.fail === true) throw new Error(`boom <b>${String(job.id)}</b>`)
    return { ok: true, echo: job.payload }
  })
  const done = new Set<string>()
  const settled = new Promise<void>(resolve => {
    const tick = (id: string): void => { done.add(id); if (done.size === failed + 2) resolve() }
    queue.on('completed', tick)
    queue.on('failed', tick)
  })
  await queue.start()
  for (let i = 0; i < failed; i++) await queue.enqueue(`f-${i}`, { fail: true, i })
  await queue.enqueue('ok-1', { fail: false })
  await queue.enqueue(HOSTILE_ID, HOSTILE)
  await settled
  await queue.stop()
  const producer = new Producer<Record<string, unknown>, unknown>({ storage, name: 'q' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueue('waiting-1', { later: true })
  const admin = new Admin({ storage })
  t.after(() => admin.close())
  return { storage, admin }
}

test('createDashboard validates its options', () => {
  const storage = new MemoryStorage()
  assert.throws(() => createDashboard({}), InvalidArgumentError)
  assert.throws(() => createDashboard({ storage, admin: new Admin({ storage }) }), /exactly one/)
  assert.throws(() => createDashboard({ storage, basePath: 'no-slash' }), /basePath/)
  assert.throws(() => createDashboard({ storage, basePath: '/a/<b>' }), /basePath/)
  assert.throws(() => createDashboard({ storage, refreshInterval: 5 }), /refreshInterval/)
  assert.throws(() => createDashboard({ storage, readOnly: 'yes' as unknown as boolean }), /readOnly/)
  assert.throws(() => createDashboard({ storage, authorize: true as unknown as () => boolean }), /authorize/)
})

test('every page and read route answers 200 with a strict CSP and no inline script', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  for (const path of ['/', '/queues/q', '/queues/q?state=failed&limit=10&order=asc', '/queues/q/jobs/f-0', '/queues/q/failures', '/queues/q/rpc']) {
    const res = await s.get(path)
    assert.equal(res.status, 200, path)
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/)
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.match(csp, /script-src 'self'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
    assert.equal(res.headers.get('x-frame-options'), 'DENY')
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    const page = await res.text()
    assert.doesNotMatch(page, /<script(?![^>]*\ssrc=)[^>]*>/, `${path} has an inline script`)
    assert.doesNotMatch(page, /\sstyle="/, `${path} has an inline style`)
    assert.doesNotMatch(page, /\son[a-z]+="/i, `${path} has an inline event handler`)
  }
  for (const [path, type] of [['/assets/dashboard.js', 'text/javascript'], ['/assets/dashboard.css', 'text/css'], ['/assets/uPlot.iife.min.js', 'text/javascript'], ['/assets/uPlot.min.css', 'text/css']]) {
    const res = await s.get(path as string)
    assert.equal(res.status, 200, path)
    assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`))
    const etag = res.headers.get('etag') ?? ''
    await res.arrayBuffer()
    assert.equal((await s.get(path as string, { 'if-none-match': etag })).status, 304)
  }
  const head = await fetch(`${url}/queues/q`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  const overview = await (await s.get('/api/overview')).json() as { queues: Array<{ name: string, counts: { failed: number } }>, version: string }
  assert.equal(overview.queues.find(q => q.name === 'q')?.counts.failed, 3)
  const list = await (await s.get('/api/queues/q/jobs?state=failed&limit=2')).json() as { jobs: Array<{ id: string }>, cursor: string }
  assert.equal(list.jobs.length, 2)
  assert.equal(typeof list.cursor, 'string')
  const job = await (await s.get('/api/queues/q/jobs/f-1')).json() as { id: string, state: string, history: unknown[] }
  assert.deepEqual([job.id, job.state, job.history.length], ['f-1', 'failed', 1])
})

test('unknown routes, jobs and assets answer 404; bad parameters 400 with a message', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const notFound = ['/nope', '/queues/q/jobs/no-such-job', '/api/queues/q/jobs/no-such-job', '/assets/..%2Fpackage.json', '/assets/index.ts', '/api/tasks/none', '/queues/q/jobs/f-0/extra']
  for (const path of notFound) assert.equal((await s.get(path)).status, 404, path)
  const page = await (await s.get('/queues/q/jobs/no-such-job')).text()
  assert.match(page, /No job &quot;no-such-job&quot; in queue &quot;q&quot;/)
  const bad: Array<[string, RegExp]> = [
    ['/queues/q?state=bogus', /`state`/],
    ['/queues/q?limit=0', /`limit`/],
    ['/queues/q?limit=abc', /`limit`/],
    ['/queues/q?limit=1001', /`limit`/],
    ['/queues/q?order=sideways', /`order`/],
    ['/queues/q?state=failed&cursor=tampered', /`cursor`/],
    ['/queues/q?state=queued&group=0123456789abcdef', /`group`/],
    ['/queues/%E0%A4%A', /percent-encoding/],
    ['/queues/q/goto', /`id`/],
    ['/api/queues/q/jobs?state=nope', /`state`/]
  ]
  for (const [path, message] of bad) {
    const res = await s.get(path)
    assert.equal(res.status, 400, path)
    assert.match(await res.text(), message, path)
  }
  const go = await s.get('/queues/q/goto?id=f-0')
  assert.equal(go.status, 303)
  assert.equal(go.headers.get('location'), '/queues/q/jobs/f-0')
})

test('a page reached by a path with empty segments refreshes from its own origin only', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const page = await (await fetch(`${url}/queues//q?state=failed`)).text()
  assert.match(page, /data-self="\/queues\/q\?state=failed"/)
})

test('bad action bodies answer 400 (or 415) with a message and change nothing', async t => {
  const { storage, admin } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['retry', '{not json', 400, /JSON/],
    ['retry', [], 400, /JSON object/],
    ['retry', {}, 400, /exactly one of `ids`/],
    ['retry', { ids: [] }, 400, /`ids`/],
    ['retry', { ids: [1, 2] }, 400, /`ids`/],
    ['retry', { ids: ['a'], selector: { state: 'failed' } }, 400, /exactly one/],
    ['retry', { selector: { state: 'queued' } }, 400, /`selector.state`/],
    ['retry', { selector: { state: 'failed', olderThan: -1 } }, 400, /olderThan/],
    ['retry', { selector: { state: 'failed', bogus: 1 } }, 400, /bogus/],
    ['retry', { selector: { state: 'failed', errorGroup: 'zz' } }, 400, /errorGroup/],
    ['retry', { selector: { state: 'failed' }, dryRun: 'yes' }, 400, /dryRun/],
    ['purge', { state: 'processing' }, 400, /state/],
    ['purge', { state: 'failed', olderThan: 'soon' }, 400, /olderThan/]
  ]
  for (const [action, body, status, message] of cases) {
    const res = await s.post(`/api/queues/q/actions/${action}`, body)
    assert.equal(res.status, status, JSON.stringify(body))
    assert.match(((await res.json()) as { error: string }).error, message, JSON.stringify(body))
  }
  const plain = await s.post('/api/queues/q/actions/retry', '{}', { 'content-type': 'text/plain' })
  assert.equal(plain.status, 415)
  assert.equal((await s.post('/api/queues/q/actions/explode', {})).status, 404)
  assert.equal((await admin.counts('q')).counts.failed, 3)
})

test('untrusted ids, payloads, results and errors render as text', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const pages = [
    await (await s.get(`/queues/q/jobs/${encodeURIComponent(HOSTILE_ID)}`)).text(),
    await (await s.get('/queues/q?state=completed')).text(),
    await (await s.get('/queues/q/jobs/f-0')).text(),
    await (await s.get('/queues/q?state=failed')).text(),
    await (await s.get('/queues/q/failures')).text()
  ]
  for (const page of pages) {
    assert.doesNotMatch(page, /<script>alert/)
    assert.doesNotMatch(page, /<img src=x/)
    assert.doesNotMatch(page, /<b>f-/)
  }
  assert.match(pages[0] as string, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  assert.match(pages[0] as string, /&quot;&gt;&lt;img src=x onerror=alert\(2\)&gt;/)
  assert.match(pages[1] as string, /&quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;/)
  assert.match(pages[2] as string, /boom &lt;b&gt;f-0&lt;\/b&gt;/)
  assert.match(pages[4] as string, /boom &lt;b&gt;/)
})

test('read-only: no action button, write routes 403 even with a valid token, nothing changes', async t => {
  const { storage, admin } = await fixture(t)
  const { url } = await serveDashboard(t, { storage, readOnly: true })
  const s = await new Session(url).open()
  for (const path of ['/', '/queues/q?state=failed', '/queues/q/jobs/f-0', '/queues/q/failures']) {
    const page = await (await s.get(path)).text()
    assert.doesNotMatch(page, /class="act /, path)
    assert.doesNotMatch(page, /<dialog/, path)
    assert.doesNotMatch(page, /class="select"/, path)
    assert.match(page, /read-only/, path)
  }
  for (const action of ['retry', 'remove', 'cancel', 'promote', 'pause', 'resume', 'purge']) {
    const res = await s.post(`/api/queues/q/actions/${action}`, { selector: { state: 'failed' }, state: 'failed' })
    assert.equal(res.status, 403, action)
    assert.match(((await res.json()) as { error: string }).error, /read-only/)
    assert.equal((await s.get(`/api/queues/q/actions/${action}`)).status, 403)
  }
  assert.equal((await s.post('/api/tasks/x/stop', {})).status, 403)
  const stats = await admin.counts('q')
  assert.equal(stats.counts.failed, 3)
  assert.equal(stats.paused, false)
})

test('a write route answers 405 to GET when writes are allowed', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const res = await fetch(`${url}/api/queues/q/actions/retry`)
  assert.equal(res.status, 405)
  assert.equal(res.headers.get('allow'), 'POST')
  const put = await fetch(`${url}/queues/q`, { method: 'PUT' })
  assert.equal(put.status, 405)
})

test('CSRF: a write needs the same origin and the token of the cookie', async t => {
  const { storage, admin } = await fixture(t)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  assert.match(s.cookie, /^relayq_csrf=[A-Za-z0-9_-]{32}$/)
  const path = '/api/queues/q/actions/pause'
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ origin: 'http://evil.example' }, /another origin/],
    [{ origin: 'null' }, /Origin/],
    [{ 'x-relayq-csrf': 'A'.repeat(32) }, /does not match/],
    [{ 'x-relayq-csrf': '' }, /does not match|missing/],
    [{ cookie: '' }, /missing/]
  ]
  for (const [headers, message] of refused) {
    const res = await s.post(path, {}, headers)
    assert.equal(res.status, 403, JSON.stringify(headers))
    assert.match(((await res.json()) as { error: string }).error, message)
  }
  const noOrigin = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-relayq-csrf': s.token, 'sec-fetch-site': 'cross-site' }, body: '{}' })
  assert.equal(noOrigin.status, 403)
  assert.equal((await admin.counts('q')).paused, false)
  const ok = await s.post(path, {})
  assert.equal(ok.status, 200)
  assert.equal((await admin.counts('q')).paused, true)
})

test('authorize is asked on every request with its action; a refusal (or a throw) is 403 and changes nothing', async t => {
  const { storage, admin } = await fixture(t)
  const asked: string[] = []
  const { url } = await serveDashboard(t, {
    storage,
    authorize: (req, action) => {
      asked.push(action)
      if (action === 'remove') throw new Error('policy store down')
      return action !== 'purge' && req.headers['x-user'] !== 'intruder'
    }
  })
  const s = await new Session(url).open()
  assert.deepEqual(asked, ['view'])
  assert.equal((await s.get('/queues/q', { 'x-user': 'intruder' })).status, 403)
  assert.equal((await s.post('/api/queues/q/actions/purge', { state: 'failed' })).status, 403)
  assert.equal((await s.post('/api/queues/q/actions/remove', { selector: { state: 'failed' } })).status, 403)
  assert.equal((await s.post('/api/queues/q/actions/retry', { selector: { state: 'failed' } }, { 'x-user': 'intruder' })).status, 403)
  assert.equal((await admin.counts('q')).counts.failed, 3)
  const { dry, task } = await s.act('q', 'retry', { selector: { state: 'failed' } })
  assert.equal(dry.count, 3)
  assert.equal(task?.count, 3)
  // The page, the intruder's page, three refused writes, the dry run and the run, then task polls (reads).
  assert.deepEqual(asked.slice(0, 7), ['view', 'view', 'purge', 'remove', 'retry', 'retry', 'retry'])
  assert.ok(asked.length > 7)
  assert.deepEqual(new Set(asked.slice(7)), new Set(['view']))
})

test('actions: dry run states the count and the command, then the task moves the jobs', async t => {
  const { storage, admin } = await fixture(t, 5)
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()

  const retried = await s.act('q', 'retry', { selector: { state: 'failed' } })
  assert.equal(retried.dry.count, 5)
  assert.equal(retried.dry.command, 'relayq jobs retry --queue q --yes --state failed')
  assert.deepEqual([retried.task?.count, retried.task?.done, retried.task?.stopped], [5, true, false])
  let stats = await admin.counts('q')
  assert.deepEqual([stats.counts.failed, stats.counts.queued], [0, 6])

  const promoted = await s.act('q', 'cancel', { ids: ['f-0', 'f-1', 'nope'] })
  assert.equal(promoted.dry.count, 2)
  assert.equal(promoted.dry.command, 'relayq jobs cancel --queue q -- f-0 f-1 nope')
  assert.equal(promoted.task?.count, 2)
  stats = await admin.counts('q')
  assert.equal(stats.counts.cancelled, 2)

  const purged = await s.act('q', 'purge', { state: 'cancelled', olderThan: 0 })
  assert.equal(purged.dry.count, 2)
  assert.equal(purged.dry.command, 'relayq queue purge q --state cancelled --older-than 0ms --yes')
  assert.equal((await admin.counts('q')).counts.cancelled, 0)

  const hostile = await s.act('q', 'remove', { ids: [HOSTILE_ID] })
  assert.equal(hostile.dry.command, `relayq jobs rm --queue q -- '${HOSTILE_ID}'`)
  assert.equal(await admin.getJob('q', HOSTILE_ID), null)

  const pause = await s.act('q', 'pause', {})
  assert.equal(pause.dry.command, 'relayq queue pause q')
  assert.equal((await admin.counts('q')).paused, true)
  const page = await (await s.get('/')).text()
  assert.match(page, /paused: no consumer claims its jobs/)
  await s.act('q', 'resume', {})
  assert.equal((await admin.counts('q')).paused, false)
})

test('cancel stops a running job through its signal', async t => {
  const storage = new MemoryStorage()
  const queue = new Queue<unknown, unknown>({ storage, name: 'run', reaper: false })
  t.after(() => queue.stop())
  const started = deferred()
  queue.execute(async job => {
    started.resolve()
    await once(job.signal, 'abort')
    throw new Error('aborted')
  })
  await queue.start()
  const cancelled = once(queue, 'cancelled')
  await queue.enqueue('long', {})
  await started.promise
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const { dry, task } = await s.act('run', 'cancel', { selector: { state: 'processing' } })
  assert.equal(dry.count, 1)
  assert.equal(task?.count, 1)
  assert.deepEqual(await cancelled, ['long'])
})

test('a bulk task can be stopped between two chunks', async t => {
  const storage = new MemoryStorage()
  const producer = new Producer<unknown, unknown>({ storage, name: 'big' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueueMany(Array.from({ length: 1200 }, (_, i) => ({ id: `j${i}`, payload: i })))
  // Hold the second chunk of the purge until the stop request has been made.
  const gate = deferred()
  const secondChunk = deferred()
  let chunks = 0
  const held = new Proxy(storage as unknown as AdminStorage, {
    get (target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (key !== 'apply' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value
      return async (...args: Parameters<AdminStorage['apply']>) => {
        if (!args[3].dryRun && ++chunks === 2) {
          secondChunk.resolve()
          await gate.promise
        }
        return await value.apply(target, args)
      }
    }
  })
  const { url } = await serveDashboard(t, { storage: held })
  const s = await new Session(url).open()
  const res = await s.post('/api/queues/big/actions/purge', { state: 'queued' })
  assert.equal(res.status, 202)
  const { task } = await res.json() as { task: { id: string, total: number } }
  assert.equal(task.total, 1200)
  await secondChunk.promise
  assert.equal((await s.post(`/api/tasks/${task.id}/stop`, {})).status, 202)
  gate.resolve()
  const end = await s.waitTask(task.id)
  assert.deepEqual([end.count, end.stopped], [1000, true])
  const admin = new Admin({ storage })
  t.after(() => admin.close())
  assert.equal((await admin.counts('big')).counts.queued, 200)
})

test('queue page: cursor paging, page size, failure-group filter', async t => {
  const storage = new MemoryStorage()
  const producer = new Producer<unknown, unknown>({ storage, name: 'p' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueueMany(Array.from({ length: 120 }, (_, i) => ({ id: `job-${String(i).padStart(3, '0')}`, payload: i })))
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const seen = new Set<string>()
  let next: string | undefined = '/queues/p?state=queued&limit=50&order=asc'
  const sizes: number[] = []
  while (next !== undefined) {
    const page: string = await (await s.get(next)).text()
    const ids = [...page.matchAll(/<tr data-id="([^"]+)"/g)].map(m => m[1] as string)
    sizes.push(ids.length)
    for (const id of ids) seen.add(id)
    const link: string | undefined = /<a href="([^"]+)" rel="next"/.exec(page)?.[1]
    next = link?.replaceAll('&amp;', '&')
  }
  assert.deepEqual(sizes, [50, 50, 20])
  assert.equal(seen.size, 120)
  const small = await (await s.get('/queues/p?state=queued&limit=10')).text()
  assert.equal([...small.matchAll(/<tr data-id=/g)].length, 10)
  assert.match(small, /<option value="10" selected>/)
})

test('failure-group filter and group page', async t => {
  const storage = new MemoryStorage()
  const queue = new Queue<{ kind: string }, unknown>({ storage, name: 'g', concurrency: 2, maxRetries: 1, reaper: false })
  t.after(() => queue.stop())
  queue.execute(async job => {
    if (job.payload.kind === 'a') throw new TypeError('bad type')
    throw new RangeError('out of range')
  })
  let failed = 0
  const all = new Promise<void>(resolve => queue.on('failed', () => { if (++failed === 5) resolve() }))
  await queue.start()
  for (let i = 0; i < 5; i++) await queue.enqueue(`g${i}`, { kind: i < 3 ? 'a' : 'b' })
  await all
  const { url } = await serveDashboard(t, { storage })
  const s = await new Session(url).open()
  const groups = await (await s.get('/queues/g/failures')).text()
  const keys = [...groups.matchAll(/<tr data-group="([0-9a-f]{16})"/g)].map(m => m[1] as string)
  assert.equal(keys.length, 2)
  assert.match(groups, /Retry this group/)
  const firstKey = keys[0] as string
  const filtered = await (await s.get(`/queues/g?state=failed&group=${firstKey}`)).text()
  assert.equal([...filtered.matchAll(/<tr data-id=/g)].length, 3)
  const { dry, task } = await s.act('g', 'retry', { selector: { state: 'failed', errorGroup: firstKey } })
  assert.equal(dry.count, 3)
  assert.equal(dry.command, `relayq jobs retry --queue g --yes --state failed --error-group ${firstKey}`)
  assert.equal(task?.count, 3)
})

test('basePath: links and routes live under it, other paths are 404', async t => {
  const { storage } = await fixture(t)
  const { url } = await serveDashboard(t, { storage, basePath: '/ops/queues/' })
  const s = await new Session(url, '/ops/queues').open()
  assert.match(s.cookie, /relayq_csrf/)
  const page = await (await s.get('/queues/q')).text()
  assert.match(page, /href="\/ops\/queues\/assets\/dashboard\.css"/)
  assert.match(page, /href="\/ops\/queues\/queues\/q\/failures"/)
  assert.equal((await fetch(`${url}/queues/q`)).status, 404)
  assert.equal((await s.post('/api/queues/q/actions/pause', {})).status, 200)
})

test('counts are sampled once per interval for every tab together', async t => {
  const storage = new MemoryStorage()
  let reads = 0
  const counted = new Proxy(storage as unknown as AdminStorage, {
    get (target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof value !== 'function') return value
      if (key === 'queues') return (...args: unknown[]) => { reads++; return value.apply(target, args) }
      return value.bind(target)
    }
  })
  const producer = new Producer<unknown, unknown>({ storage, name: 'shared' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueue('one', {})
  const { url } = await serveDashboard(t, { storage: counted, refreshInterval: 60_000 })
  await Promise.all(Array.from({ length: 20 }, () => fetch(`${url}/api/overview`).then(r => r.json())))
  for (const path of ['/', '/queues/shared', '/api/overview']) assert.equal((await fetch(`${url}${path}`)).status, 200)
  assert.equal(reads, 1)
})

test('live: the event stream sends a snapshot at once and again when counts change', async t => {
  const storage = new MemoryStorage()
  const { url } = await serveDashboard(t, { storage, refreshInterval: 100 })
  const producer = new Producer<unknown, unknown>({ storage, name: 'live' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueue('first', {})

  const controller = new AbortController()
  t.after(() => controller.abort())
  const res = await fetch(`${url}/api/events`, { signal: controller.signal })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  const nextSnapshot = async (): Promise<{ version: string }> => {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (block.includes('event: snapshot') && data !== undefined) return JSON.parse(data)
        continue
      }
      const { value, done } = await reader.read()
      assert.equal(done, false)
      buffer += value
    }
  }
  const first = await nextSnapshot()
  await producer.enqueue('second', {})
  // A stream is sent a snapshot only when it changed: its version, or (at a minute's turn) the
  // chart's current minute with the same version.
  let second = await nextSnapshot()
  if (second.version === first.version) second = await nextSnapshot()
  assert.notEqual(second.version, first.version)
  const overview = await (await fetch(`${url}/api/overview`)).json() as { version: string, queues: Array<{ counts: { queued: number } }> }
  assert.equal(overview.queues[0]?.counts.queued, 2)
})

test('express: mounted with app.use(basePath, handler), express.json() before it or not', async t => {
  const { default: express } = await import('express')
  const { storage, admin } = await fixture(t)
  const dashboard = createDashboard({ storage, basePath: '/dash' })
  t.after(() => dashboard.close())
  const app = express()
  app.use(express.json())
  app.use('/dash', dashboard)
  app.get('/', (_req, res) => { res.send('app home') })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.closeAllConnections(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  assert.equal(await (await fetch(`${url}/`)).text(), 'app home')
  const s = await new Session(url, '/dash').open()
  const page = await (await s.get('/queues/q?state=failed')).text()
  assert.match(page, /href="\/dash\/queues\/q\/jobs\/f-0"/)
  const { dry, task } = await s.act('q', 'retry', { ids: ['f-0'] })
  assert.equal(dry.count, 1)
  assert.equal(task?.count, 1)
  assert.equal((await admin.counts('q')).counts.failed, 2)
})

test('fastify: mountFastify serves the handler under a prefix with the body unread', async t => {
  const { default: Fastify } = await import('fastify')
  const { mountFastify } = await import('../src/dashboard/index.ts')
  const { storage, admin } = await fixture(t)
  const dashboard = createDashboard({ storage, basePath: '/dash' })
  t.after(() => dashboard.close())
  const app = Fastify()
  app.get('/', async () => 'app home')
  mountFastify(app as unknown as Parameters<typeof mountFastify>[0], dashboard, '/dash')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  assert.equal(await (await fetch(`${url}/`)).text(), 'app home')
  const s = await new Session(url, '/dash').open()
  assert.equal((await s.get('/')).status, 200)
  assert.match(await (await s.get('/queues/q/jobs/f-1')).text(), /boom &lt;b&gt;f-1/)
  const { dry, task } = await s.act('q', 'remove', { ids: ['f-1', 'f-2'] })
  assert.equal(dry.count, 2)
  assert.equal(task?.count, 2)
  assert.equal((await admin.counts('q')).counts.failed, 1)
  assert.equal((await s.post('/api/queues/q/actions/retry', '{oops')).status, 400)
})
