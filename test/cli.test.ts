import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { FileStorage, MemoryStorage } from '../src/index.ts'
import type { AdminStorage } from '../src/storage/types.ts'
import { cliTests, runInProcess, spawnCli } from './cli-suite.ts'
import { freePort } from './fixtures/redis-server.ts'

const dir = await mkdtemp(join(tmpdir(), 'relayq-cli-'))
const url = pathToFileURL(dir).href
after(() => rm(dir, { recursive: true, force: true }))

cliTests('file (the binary as a subprocess)', {
  run: (args, options = {}) => spawnCli(args, { RELAYQ_URL: url, ...options.env }, options),
  async storage (t) {
    const storage = new FileStorage({ basePath: dir })
    await storage.connect()
    t.after(() => storage.disconnect())
    return storage
  }
})

// A MemoryStorage lives in one process: the commands run in-process through run().
const memory = new MemoryStorage()
cliTests('memory (in-process)', {
  run: (args, options = {}) => runInProcess(memory as AdminStorage, args, { ...options.env }, options),
  async storage (t) {
    await memory.connect()
    t.after(() => memory.disconnect())
    return memory as AdminStorage
  }
})

test('--help on every command has its usage and an example; relayq --help lists them all', async () => {
  const top = await spawnCli(['--help'], {})
  assert.equal(top.code, 0)
  const names = [...top.stdout.matchAll(/^ {2}([a-z]+(?: [a-z]+)?)(?= |$)/gm)].map(m => m[1]).filter(n => !n.startsWith('relayq'))
  assert.ok(names.length >= 17, top.stdout)
  for (const name of names) {
    const help = await spawnCli([...name.split(' '), '--help'], {})
    assert.equal(help.code, 0, name)
    assert.match(help.stdout, new RegExp(`^relayq ${name}`), name)
    assert.match(help.stdout, new RegExp(`Examples:\\n {2}relayq ${name.split(' ')[0]}`), name)
    assert.match(help.stdout, /\[RELAYQ_URL\]/, `${name}: every flag names its environment variable`)
  }
})

test('usage errors name the flag or argument and exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['jobs', 'ls', '-q', 'x', '--bogus'], /unknown flag --bogus/],
    [['jobs', 'ls', '-q', 'x', '--state', 'nope'], /--state: expected one of queued, delayed/],
    [['jobs', 'ls', '-q', 'x', '-s', 'failed', '--limit', '0'], /--limit: expected an integer from 1 to 1000/],
    [['jobs', 'ls', '-s', 'failed'], /--queue is required/],
    [['jobs', 'ls', '-q', 'x', '--state'], /--state needs a value/],
    [['status', '--watch', '5'], /--watch: expected a duration/],
    [['explain', 'only-queue'], /missing <queue> <id>/],
    [['jobs', 'retry', '-q', 'x'], /give job ids, or --state/],
    [['jobs', 'retry', '-q', 'x', 'id-1', '--state', 'failed'], /not both/],
    [['jobs'], /jobs: which one\? ls, show, retry/],
    [['frobnicate'], /unknown command 'frobnicate'/]
  ]
  for (const [args, pattern] of cases) {
    const result = await spawnCli(args, { RELAYQ_URL: url })
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, pattern)
    assert.equal(result.stdout, '')
  }
  // Environment variables are checked the same way, and named.
  const env = await spawnCli(['jobs', 'ls', '-q', 'x'], { RELAYQ_URL: url, RELAYQ_STATE: 'bogus' })
  assert.equal(env.code, 2)
  assert.match(env.stderr, /RELAYQ_STATE: expected one of/)
})

test('a flag from the environment: RELAYQ_OUTPUT, RELAYQ_URL', async () => {
  const result = await spawnCli(['queues'], { RELAYQ_URL: url, RELAYQ_OUTPUT: 'json' })
  assert.equal(result.code, 0, result.stderr)
  assert.ok(Array.isArray(JSON.parse(result.stdout)))
})

test('a bad URL, a missing directory, an unreachable server: one line, exit 1, a stack only with --verbose', async () => {
  const port = await freePort()
  const cases: Array<[string, RegExp]> = [
    ['http://example.com', /^relayq: --url: unsupported scheme 'http:'/],
    ['not a url', /^relayq: --url: 'not a url' is not a URL/],
    ['memory://', /MemoryStorage lives inside one process/],
    [pathToFileURL(join(dir, 'missing')).href, /is not a directory/],
    [`redis://user:hunter2@127.0.0.1:${port}`, new RegExp(`^relayq: cannot connect to redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}.*ECONNREFUSED`)]
  ]
  for (const [target, pattern] of cases) {
    const result = await spawnCli(['status'], { RELAYQ_URL: target })
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, pattern)
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr)
    assert.doesNotMatch(result.stderr, /hunter2/)
  }
  const verbose = await spawnCli(['status', '--verbose'], { RELAYQ_URL: `redis://127.0.0.1:${port}` })
  assert.equal(verbose.code, 1)
  assert.match(verbose.stderr, /\n {4}at /)
})
