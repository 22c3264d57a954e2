import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Producer, RedisStorage } from '../src/index.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const PASSWORD = 'pa55-w0rd-secret'

let redis: RedisServer
before(async () => { redis = await startRedis({ password: PASSWORD, args: ['--requirepass', PASSWORD] }) })
after(async () => { await redis?.stop() })

/** Starts `relayq dashboard` (the built binary) and resolves with the URL it prints. */
async function startCli (t: import('node:test').TestContext, args: string[], env: Record<string, string> = {}): Promise<{ url: string, line: string, exit: Promise<number | null>, stop: () => void }> {
  const child = spawn(process.execPath, [BIN, 'dashboard', '--port', '0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += String(chunk) })
  const lines = createInterface({ input: child.stdout })
  const [line] = await Promise.race([once(lines, 'line'), exit.then(code => { throw new Error(`relayq dashboard exited ${code}: ${stderr}`) })]) as [string]
  const url = /on (http:\/\/\S+?)\/? /.exec(line)?.[1]
  assert.ok(url !== undefined, line)
  return { url, line, exit, stop: () => child.kill('SIGINT') }
}

test('relayq dashboard serves the queues of the URL, behind Basic auth, without ever sending the password', async t => {
  const prefix = `cli-dash-${randomUUID()}`
  const storage = new RedisStorage({ url: redis.url, keyPrefix: prefix })
  const producer = new Producer<unknown, unknown>({ storage, name: 'emails' })
  await producer.start()
  t.after(() => producer.stop())
  await producer.enqueue('welcome-1', { to: 'a@example.com' })

  const { url, line, exit, stop } = await startCli(t, ['--url', redis.url, '--prefix', prefix, '--user', 'ops'], { RELAYQ_PASSWORD: 'letmein' })
  assert.doesNotMatch(line, new RegExp(PASSWORD))
  assert.match(line, /redis:\/\/:\*\*\*@127\.0\.0\.1/)
  assert.equal((await fetch(`${url}/`)).status, 401)
  assert.equal((await fetch(`${url}/`, { headers: { authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` } })).status, 401)
  const auth = { authorization: `Basic ${Buffer.from('ops:letmein').toString('base64')}` }
  for (const path of ['/', '/queues/emails', '/queues/emails/jobs/welcome-1', '/api/overview', '/queues/emails/rpc']) {
    const res = await fetch(`${url}${path}`, { headers: auth })
    assert.equal(res.status, 200, path)
    const body = await res.text()
    assert.doesNotMatch(body, new RegExp(PASSWORD), path)
    assert.doesNotMatch(body, /letmein/, path)
  }
  const overview = await (await fetch(`${url}/api/overview`, { headers: auth })).json() as { queues: Array<{ name: string, counts: { queued: number } }> }
  assert.deepEqual(overview.queues.map(q => [q.name, q.counts.queued]), [['emails', 1]])
  stop()
  assert.equal(await exit, 0)
})

test('relayq dashboard --read-only refuses writes; --user without --password is a usage error', async t => {
  const prefix = `cli-dash-${randomUUID()}`
  const { url, line, stop, exit } = await startCli(t, ['--url', redis.url, '--prefix', prefix, '--read-only'])
  assert.match(line, /read-only/)
  const page = await fetch(`${url}/`)
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] as string
  const token = /name="relayq-csrf" content="([^"]+)"/.exec(await page.text())?.[1] as string
  const res = await fetch(`${url}/api/queues/emails/actions/pause`, { method: 'POST', headers: { cookie, 'x-relayq-csrf': token, origin: url, 'content-type': 'application/json' }, body: '{}' })
  assert.equal(res.status, 403)
  stop()
  assert.equal(await exit, 0)

  for (const [env, message] of [[{}, /--user and --password go together/], [{ RELAYQ_PASSWORD: '' }, /must not be empty/]] as const) {
    const { RELAYQ_PASSWORD: _drop, ...base } = process.env
    const usage = spawn(process.execPath, [BIN, 'dashboard', '--port', '0', '--url', redis.url, '--user', 'ops'], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => { if (usage.exitCode === null) usage.kill('SIGKILL') })
    let err = ''
    usage.stderr.on('data', chunk => { err += String(chunk) })
    const [code] = await once(usage, 'exit')
    assert.equal(code, 2)
    assert.match(err, message)
  }
})

test('the command line each dashboard action shows does the same through relayq', async t => {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const { Admin, Queue } = await import('../src/index.ts')
  const { serveDashboard, Session } = await import('./fixtures/dashboard.ts')
  const prefix = `cli-dash-${randomUUID()}`
  const storage = new RedisStorage({ url: redis.url, keyPrefix: prefix })
  const queue = new Queue<unknown, unknown>({ storage, name: 'it\'s mail', maxRetries: 1, reaper: false })
  t.after(() => queue.stop())
  queue.execute(async () => { throw new Error('nope') })
  const ids = ['f-0', 'f-1', 'it\'s "quoted" $HOME `x`']
  let failed = 0
  const all = new Promise(resolve => queue.on('failed', () => { if (++failed === ids.length) resolve(null) }))
  await queue.start()
  for (const id of ids) await queue.enqueue(id, {})
  await all
  await queue.stop()
  const admin = new Admin({ storage })
  t.after(() => admin.close())
  const { url } = await serveDashboard(t, { admin })
  const s = await new Session(url).open()
  const command = async (action: string, body: unknown): Promise<string> => {
    const res = await s.post(`/api/queues/${encodeURIComponent('it\'s mail')}/actions/${action}`, { ...body as object, dryRun: true })
    return ((await res.json()) as { command: string }).command
  }
  const shell = async (line: string): Promise<void> => {
    assert.match(line, /^relayq /)
    // The line as an operator would paste it, with `relayq` being the built binary.
    await promisify(execFile)('sh', ['-c', `"${process.execPath}" "${BIN}" ${line.slice('relayq '.length)}`], { env: { ...process.env, RELAYQ_URL: redis.url, RELAYQ_PREFIX: prefix } })
  }
  await shell(await command('remove', { ids: [ids[2]] }))
  assert.equal(await admin.getJob('it\'s mail', ids[2] as string), null)
  await shell(await command('retry', { selector: { state: 'failed' } }))
  assert.deepEqual([(await admin.counts('it\'s mail')).counts.failed, (await admin.counts('it\'s mail')).counts.queued], [0, 2])
  await shell(await command('pause', {}))
  assert.equal((await admin.counts('it\'s mail')).paused, true)
  await shell(await command('purge', { state: 'queued', olderThan: 0 }))
  assert.equal((await admin.counts('it\'s mail')).counts.queued, 0)
})
