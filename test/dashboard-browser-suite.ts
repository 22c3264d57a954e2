/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real
 * server and a real storage: one suite, run for each backend. Every wait is for something on the
 * page (a selector, a text), never a fixed time. Screenshots of the overview and of a job page go
 * to the test's temporary directory, and also to RELAYQ_SCREENSHOTS_DIR when set (docs/ for the
 * README: `RELAYQ_SCREENSHOTS_DIR=docs node --import tsx --test test/dashboard-browser.test.ts`).
 */
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import type { BrowserContext, Page } from 'playwright-core'
import { Admin, Producer, Queue } from '../src/index.ts'
import type { AdminStorage } from '../src/storage/types.ts'
import { launchBrowser } from './fixtures/browser.ts'
import { serveDashboard } from './fixtures/dashboard.ts'

/** Makes a fresh, empty storage for one test and registers its cleanup. */
export type StorageFactory = (t: TestContext) => Promise<AdminStorage>

const XSS = '<script>window.__xss = 1</script>"><img src=x onerror="window.__xss = 2">'

export function dashboardBrowserTests (name: string, makeStorage: StorageFactory): void {
  let browser: { context: BrowserContext, close: () => Promise<void> }
  let shots: string

  before(async () => {
    // No skip when Chromium is missing: the launch throws and every test fails.
    browser = await launchBrowser()
    shots = await mkdtemp(join(tmpdir(), 'relayq-dashboard-shots-'))
  })
  after(async () => {
    await browser?.close()
    if (shots !== undefined) await rm(shots, { recursive: true, force: true })
  })

  /** A page that fails the test on any script error, CSP violation or alert. */
  async function open (t: TestContext, url: string): Promise<Page> {
    const page = await browser.context.newPage()
    t.after(() => page.close())
    const problems: string[] = []
    page.on('pageerror', err => problems.push(`page error: ${err.message}`))
    page.on('console', msg => { if (/Content Security Policy|Refused to/.test(msg.text())) problems.push(`csp: ${msg.text()}`) })
    page.on('dialog', dialog => { problems.push(`alert: ${dialog.message()}`); dialog.dismiss().catch(() => {}) })
    t.after(() => assert.deepEqual(problems, []))
    await page.goto(url)
    return page
  }

  async function screenshot (page: Page, file: string): Promise<void> {
    await page.screenshot({ path: join(shots, file), fullPage: true })
    const dir = process.env.RELAYQ_SCREENSHOTS_DIR
    if (dir !== undefined && dir !== '') {
      await mkdir(dir, { recursive: true })
      await copyFile(join(shots, file), join(dir, file))
    }
  }

  /** A queue with `failing` jobs that fail and `ok` jobs that complete, processed to the end; the consumer stopped. */
  async function failedJobs (t: TestContext, storage: AdminStorage, queueName: string, failing: number, ok: number): Promise<void> {
    const queue = new Queue<{ to: string, fail: boolean }, { sent: boolean }>({ storage, name: queueName, concurrency: 4, maxRetries: 1, reaper: false })
    t.after(() => queue.stop())
    queue.execute(async job => {
      if (job.payload.fail) throw new Error(`SMTP 550 mailbox unavailable: ${job.payload.to}`)
      return { sent: true }
    })
    let settled = 0
    const all = new Promise<void>(resolve => {
      const tick = (): void => { if (++settled === failing + ok) resolve() }
      queue.on('completed', tick)
      queue.on('failed', tick)
    })
    await queue.start()
    await queue.enqueueMany([
      ...Array.from({ length: failing }, (_, i) => ({ id: `mail-f${i}`, payload: { to: `user${i}@example.com`, fail: true } })),
      ...Array.from({ length: ok }, (_, i) => ({ id: `mail-ok${i}`, payload: { to: `ok${i}@example.com`, fail: false } }))
    ])
    await all
    await queue.stop()
  }

  test(`${name}: a job enqueued appears in the list without a reload (SSE)`, async t => {
    const storage = await makeStorage(t)
    const producer = new Producer<unknown, unknown>({ storage, name: 'incoming' })
    await producer.start()
    t.after(() => producer.stop())
    await producer.enqueue('first-job', { n: 1 })
    const { url } = await serveDashboard(t, { storage, refreshInterval: 200 })
    const page = await open(t, `${url}/queues/incoming?state=queued`)
    await page.locator('#live-status', { hasText: 'live' }).waitFor()
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42 })
    await producer.enqueue('arrived-later', { n: 2 })
    await page.locator('tr[data-id="arrived-later"]').waitFor()
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42)
    assert.equal(await page.locator('nav.tabs [data-count="queued"]').textContent(), '2')
  })

  test(`${name}: with the event stream refused, polling still brings new jobs; a hidden tab stops updating`, async t => {
    const storage = await makeStorage(t)
    const producer = new Producer<unknown, unknown>({ storage, name: 'polled' })
    await producer.start()
    t.after(() => producer.stop())
    await producer.enqueue('one', {})
    const { url } = await serveDashboard(t, { storage, refreshInterval: 200 })
    const page = await browser.context.newPage()
    t.after(() => page.close())
    await page.route('**/api/events', route => route.abort())
    await page.goto(`${url}/queues/polled?state=queued`)
    await page.locator('#live-status', { hasText: 'polling' }).waitFor()
    await producer.enqueue('two', {})
    await page.locator('tr[data-id="two"]').waitFor()
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: true, configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    assert.equal(await page.locator('#live-status').textContent(), 'paused (tab hidden)')
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: false, configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await producer.enqueue('three', {})
    await page.locator('tr[data-id="three"]').waitFor()
  })

  test(`${name}: a failed job's page shows every attempt's stack`, async t => {
    const storage = await makeStorage(t)
    await failedJobs(t, storage, 'emails', 2, 3)
    const { url } = await serveDashboard(t, { storage })
    const page = await open(t, `${url}/queues/emails/jobs/mail-f1`)
    const stack = page.locator('ol.attempts pre.stack').first()
    await stack.waitFor()
    const text = await stack.textContent() ?? ''
    assert.match(text, /^Error: SMTP 550 mailbox unavailable: user1@example\.com\n\s+at /)
    assert.match(await page.locator('p.explain').textContent() ?? '', /It finished: failed/)
    assert.equal(await page.locator('.badge.state-failed').textContent(), 'failed')
    await screenshot(page, 'dashboard-job.png')
  })

  test(`${name}: retry all failed states the dry-run count, then moves the jobs`, async t => {
    const storage = await makeStorage(t)
    await failedJobs(t, storage, 'emails', 7, 2)
    const admin = new Admin({ storage })
    t.after(() => admin.close())
    const { url } = await serveDashboard(t, { storage, refreshInterval: 200 })
    const page = await open(t, `${url}/queues/emails?state=failed`)
    await page.getByRole('button', { name: 'Retry all failed' }).click()
    const dialog = page.locator('dialog#confirm')
    await dialog.locator('#confirm-text', { hasText: 'Retry 7 jobs of queue "emails"' }).waitFor()
    assert.equal(await dialog.locator('#confirm-command').textContent(), 'relayq jobs retry --queue emails --yes --state failed')
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await dialog.locator('#confirm-status', { hasText: 'Done: 7 changed.' }).waitFor()
    const stats = await admin.counts('emails')
    assert.deepEqual([stats.counts.failed, stats.counts.queued], [0, 7])
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await page.locator('nav.tabs [data-count="failed"]', { hasText: /^0$/ }).waitFor()
  })

  test(`${name}: pausing a queue shows the warning on the overview`, async t => {
    const storage = await makeStorage(t)
    const admin = new Admin({ storage })
    t.after(() => admin.close())
    // The dashboard watches from the start, so the chart counts the jobs processed below.
    const { url } = await serveDashboard(t, { storage, refreshInterval: 200 })
    const page = await open(t, `${url}/`)
    await page.locator('#live-status', { hasText: 'live' }).waitFor()
    await failedJobs(t, storage, 'emails', 3, 12)
    const producer = new Producer<unknown, unknown>({ storage, name: 'reports' })
    await producer.start()
    t.after(() => producer.stop())
    await producer.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ id: `report-${i}`, payload: { month: i + 1 } })))
    // A live consumer on a third queue: the overview lists it, and its queue gets no warning.
    const worker = new Queue<unknown, unknown>({ storage, name: 'webhooks', concurrency: 8, reaper: false })
    t.after(() => worker.stop())
    worker.execute(async () => ({ delivered: true }))
    await worker.start()
    let delivered = 0
    const allDelivered = new Promise(resolve => worker.on('completed', () => { if (++delivered === 20) resolve(null) }))
    await worker.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ id: `hook-${i}`, payload: { url: 'https://example.com/hook' } })))
    await allDelivered
    await page.locator('.warning', { hasText: 'reports: 4 jobs waiting or running and no live consumer' }).waitFor()
    await page.locator('tr[data-queue="emails"]').getByRole('button', { name: 'Pause' }).click()
    const dialog = page.locator('dialog#confirm')
    await dialog.locator('#confirm-text', { hasText: 'Pause queue "emails"?' }).waitFor()
    assert.equal(await dialog.locator('#confirm-command').textContent(), 'relayq queue pause emails')
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await page.locator('.warning', { hasText: 'emails: paused: no consumer claims its jobs until it is resumed' }).waitFor()
    assert.equal((await admin.counts('emails')).paused, true)
    await page.locator('tr[data-queue="emails"] .badge.warn', { hasText: 'paused' }).waitFor()
    await page.locator('#chart .uplot').waitFor()
    await page.locator('tr[data-queue="webhooks"] [data-count="completed"]', { hasText: /^20$/ }).waitFor()
    await screenshot(page, 'dashboard-overview.png')
  })

  test(`${name}: read-only hides every button and the server refuses a forged POST`, async t => {
    const storage = await makeStorage(t)
    await failedJobs(t, storage, 'emails', 2, 0)
    const admin = new Admin({ storage })
    t.after(() => admin.close())
    const { url } = await serveDashboard(t, { storage, readOnly: true })
    for (const path of ['/', '/queues/emails?state=failed', '/queues/emails/jobs/mail-f0', '/queues/emails/failures']) {
      const page = await open(t, `${url}${path}`)
      await page.locator('.badge.ro', { hasText: 'read-only' }).waitFor()
      assert.equal(await page.locator('button.act').count(), 0, path)
      assert.equal(await page.locator('input.select').count(), 0, path)
      assert.equal(await page.locator('form.purge').count(), 0, path)
    }
    const page = await open(t, `${url}/queues/emails?state=failed`)
    const status = await page.evaluate(async () => {
      const token = document.querySelector('meta[name="relayq-csrf"]')?.getAttribute('content') ?? ''
      const res = await fetch('/api/queues/emails/actions/retry', {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-relayq-csrf': token }, body: JSON.stringify({ selector: { state: 'failed' } })
      })
      return [res.status, (await res.json() as { error: string }).error]
    })
    assert.deepEqual(status, [403, 'The dashboard is read-only'])
    assert.equal((await admin.counts('emails')).counts.failed, 2)
  })

  test(`${name}: a hostile payload, id and error render as text`, async t => {
    const storage = await makeStorage(t)
    const queue = new Queue<{ body: string }, unknown>({ storage, name: 'hostile', maxRetries: 1, reaper: false })
    t.after(() => queue.stop())
    queue.execute(async job => { throw new Error(job.payload.body) })
    const failed = new Promise(resolve => queue.once('failed', resolve))
    await queue.start()
    const id = '"><img src=x onerror="window.__xss = 3">'
    await queue.enqueue(id, { body: XSS })
    await failed
    const { url } = await serveDashboard(t, { storage })
    const page = await open(t, `${url}/queues/hostile/jobs/${encodeURIComponent(id)}`)
    assert.equal(JSON.parse(await page.locator('#payload').textContent() ?? '').body, XSS)
    assert.equal(await page.locator('h1').textContent(), `Job ${id}`)
    assert.match(await page.locator('ol.attempts p.err').first().textContent() ?? '', /<script>window\.__xss = 1<\/script>/)
    const list = await open(t, `${url}/queues/hostile?state=failed`)
    assert.equal(await list.locator('td.id a').textContent(), id)
    for (const p of [page, list]) {
      assert.equal(await p.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined)
      assert.equal(await p.locator('main img').count(), 0)
      assert.equal(await p.locator('main script').count(), 0)
    }
  })
}
