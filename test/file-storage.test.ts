import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { FileStorage, InvalidArgumentError, Queue, StorageError, type FileStorageOptions, type Notice } from '../src/index.ts'
import { Reader, Writer, crc32, crc32js } from '../src/storage/file/codec.ts'
import { IDLE_SNAPSHOT } from '../src/storage/file/log.ts'
import { decodeState, encodeState } from '../src/storage/file/snapshot.ts'
import { queueDir } from '../src/storage/file/paths.ts'
import { QueueState } from '../src/storage/queue-state.ts'
import { FakeClock, job, storageContract, until } from './storage-contract.ts'
import { failedStartTests } from './lifecycle-suite.ts'
import { queueTests } from './queue-suite.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'
import type { Command, Reply } from './fixtures/file-process.ts'

async function tempDir (t?: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'relayq-file-'))
  t?.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A factory for the shared suites: every instance over one fresh directory, removed by cleanup. */
function files (options: Partial<FileStorageOptions> = {}) {
  return async (clock?: () => number) => {
    const basePath = await tempDir()
    const make = (): FileStorage => new FileStorage({ basePath, ...(clock !== undefined && { clock }), ...options })
    return { storage: make(), another: make, cleanup: () => rm(basePath, { recursive: true, force: true }) }
  }
}

storageContract('file', files())
queueTests('file', files())
adminTests('file', files())
// Small segments: the runs seal, snapshot and reload along the way.
modelTests('file', files({ segmentSize: 2048, watch: false }), { runs: 100 })
// The base path is a file at first (unusable), then removed: the directory can be made.
failedStartTests('file', async () => {
  const dir = await tempDir()
  const basePath = join(dir, 'queues')
  writeFileSync(basePath, 'not a directory')
  return {
    make: () => new FileStorage({ basePath }),
    fix: () => rm(basePath),
    cleanup: () => rm(dir, { recursive: true, force: true })
  }
})

/** A connected FileStorage, disconnected after the test. */
async function open (t: TestContext, options: FileStorageOptions): Promise<FileStorage> {
  const storage = new FileStorage(options)
  await storage.connect()
  t.after(() => storage.disconnect())
  return storage
}

const random = (n: number): number => Math.floor(Math.random() * n)
const claimNow = { max: 100, leaseMs: 30_000, blockMs: 0 }

const FIXTURE = fileURLToPath(new URL('./fixtures/file-process.ts', import.meta.url))

/** A child process running test/fixtures/file-process.ts, killed after the test if still alive. */
function child (t: TestContext): { inbox: Reply[], send: (cmd: Command) => void, next: <T extends Reply['type']>(type: T) => Promise<Extract<Reply, { type: T }>>, kill: () => Promise<void> } {
  const proc = fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = once(proc, 'exit')
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null
  t.after(async () => {
    if (alive()) proc.kill('SIGKILL')
    await exited
  })
  const inbox: Reply[] = []
  let wake: () => void = () => {}
  proc.on('message', (reply: Reply) => {
    inbox.push(reply)
    wake()
  })
  return {
    inbox,
    send: cmd => { proc.send(cmd) },
    async next (type) {
      for (;;) {
        const i = inbox.findIndex(r => r.type === type || r.type === 'failed')
        if (i >= 0) {
          const [reply] = inbox.splice(i, 1)
          if (reply.type === 'failed') throw new Error(`child failed: ${reply.message}`)
          return reply as Extract<Reply, { type: typeof type }>
        }
        if (!alive()) throw new Error(`the child exited before '${type}'`)
        await Promise.race([new Promise<void>(resolve => { wake = resolve }), exited])
      }
    },
    async kill () {
      proc.kill('SIGKILL')
      await exited
    }
  }
}

test('file: 2 producer and 2 consumer processes, 5,000 jobs and 1,000 enqueueAndWait calls: every job runs once, every call is answered', { timeout: 120_000 }, async t => {
  const basePath = await tempDir(t)
  const queue = 'shared'
  const consumers = [child(t), child(t)]
  for (const c of consumers) c.send({ type: 'consume', basePath, queue, concurrency: 20 })
  await Promise.all(consumers.map(c => c.next('ready')))
  const producers = [child(t), child(t)]
  // The id ranges overlap by 200: those ids are enqueued by both processes and stored once.
  producers[0].send({ type: 'produce', basePath, queue, from: 0, to: 2600, rpcFrom: 0, rpcTo: 500 })
  producers[1].send({ type: 'produce', basePath, queue, from: 2400, to: 5000, rpcFrom: 500, rpcTo: 1000 })
  const produced = await Promise.all(producers.map(p => p.next('produced')))
  assert.equal(produced[0].queued + produced[1].queued, 5000, 'dedup holds across processes')
  for (const p of produced) {
    assert.deepEqual(p.errors, [])
    assert.equal(p.answered, 500)
    assert.equal(p.wrong, 0)
  }
  const storage = await open(t, { basePath })
  await until(async () => (await storage.overview(queue)).totals.completed === 6000, 60_000)
  for (const c of consumers) c.send({ type: 'stop' })
  const stopped = await Promise.all(consumers.map(c => c.next('stopped')))
  const runs = new Map<string, number>()
  for (const s of stopped) for (const id of s.executed) runs.set(id, (runs.get(id) ?? 0) + 1)
  assert.equal(runs.size, 6000)
  assert.deepEqual([...runs].filter(([, n]) => n !== 1), [], 'each job ran exactly once')
  assert.ok(stopped.every(s => s.executed.length > 0), 'both consumers took jobs')
  assert.deepEqual([...produced, ...stopped].map(r => r.warnings), [0, 0, 0, 0], 'no process warning (no fs.watch flood)')
  for (const n of [0, 2500, 4999]) assert.equal((await storage.getStatus(queue, `job-${n}`))?.result?.toString(), String(n * 2))
})

test('file: kill -9 of consumers and of a producer at random moments loses no job', { timeout: 120_000 }, async t => {
  const basePath = await tempDir(t)
  const queue = 'crash'
  // Short leases and lock TTL so the reaper (leader-elected across the consumers) recovers quickly.
  const consume: Command = { type: 'consume', basePath, queue, concurrency: 8, visibilityTimeout: 1000, lockTTL: 600, maxStalls: 1000, workMs: 2 }
  const live: Array<ReturnType<typeof child>> = []
  const startConsumer = async (): Promise<void> => {
    const c = child(t)
    c.send(consume)
    await c.next('ready')
    live.push(c)
  }
  await Promise.all([startConsumer(), startConsumer(), startConsumer()])
  const feeder = child(t)
  feeder.send({ type: 'feed', basePath, queue, prefix: 'fed', paceMs: 4 })
  await feeder.next('ready')
  const storage = await open(t, { basePath })
  const completed = async (): Promise<number> => (await storage.overview(queue)).totals.completed
  for (let kill = 0; kill < 6; kill++) {
    const mark = await completed() + 100 + random(300)
    await until(async () => await completed() >= mark, 30_000)
    const [victim] = live.splice(random(live.length), 1)
    await victim.kill()
    await startConsumer()
  }
  await until(async () => await completed() >= 200 + random(400), 30_000)
  await feeder.kill()
  const acked = feeder.inbox.flatMap(r => r.type === 'acked' ? r.ids : [])
  assert.ok(acked.length > 500, `the feeder stored ${acked.length} jobs`)
  await until(async () => {
    const c = await storage.counts(queue)
    return c.queued + c.processing + c.delayed + c.failing === 0
  }, 60_000)
  for (const id of acked) {
    const status = await storage.getStatus(queue, id)
    assert.equal(status?.state, 'completed', id)
    assert.equal(status?.result?.toString(), String(Number(id.slice(4)) * 2), id)
  }
  // Whatever the kills left in the log (torn frames included), a new process reads the same state.
  const fresh = await open(t, { basePath })
  assert.deepEqual(await fresh.counts(queue), await storage.counts(queue))
})

test('file: writers killed in the middle of large writes leave no trace a reader applies', { timeout: 120_000 }, async t => {
  const basePath = await tempDir(t)
  const reader = await open(t, { basePath })
  const acked: string[] = []
  for (let round = 0; round < 5; round++) {
    const feeder = child(t)
    // 200 jobs of 2 KB per write: each write(2) takes long enough for a SIGKILL to land inside it.
    feeder.send({ type: 'feed', basePath, queue: 'big', prefix: `r${round}`, paceMs: 0, batch: 200, payloadBytes: 2048 })
    await feeder.next('ready')
    const chunks = 1 + random(4)
    await until(() => feeder.inbox.length >= chunks, 30_000)
    await feeder.kill()
    acked.push(...feeder.inbox.flatMap(r => r.type === 'acked' ? r.ids : []))
  }
  const fresh = await open(t, { basePath })
  const counts = await fresh.counts('big')
  assert.deepEqual(await reader.counts('big'), counts)
  for (const id of acked) assert.equal((await fresh.getStatus('big', id))?.state, 'queued', id)
  assert.deepEqual(await reader.enqueue('big', [job('last')]), [{ status: 'queued' }])
  assert.equal((await fresh.counts('big')).queued, counts.queued + 1)
})

test('file: ids, queue names and lock names never lead outside basePath; nothing is world-accessible', async t => {
  const root = await tempDir(t)
  const basePath = join(root, 'base')
  const storage = await open(t, { basePath })
  const hostile = [
    '../x', '../../../../etc/passwd', '/etc/passwd', 'a/b', 'a\\b', 'C:\\Windows', 'nul\u0000byte', 'x'.repeat(1024),
    'CON', 'nul', 'COM1', 'aux.txt', 'LPT1', '.', '..', '...', ' ', 'trailing. ', '~', '%2e%2e%2f', 'x\uFFFD', 'émoji 🎉'
  ]
  for (const name of hostile) {
    assert.deepEqual(await storage.enqueue(name, [job(name, name)]), [{ status: 'queued' }], name)
    assert.equal(await storage.acquireLock(name, 'me', 60_000), true, name)
  }
  // Each name is its own queue, holding the one job whose id is that same name, intact.
  for (const name of hostile) {
    const [claimed] = await storage.claim(name, 'w', claimNow)
    assert.equal(claimed.id, name)
    assert.equal(claimed.payload.toString(), Buffer.from(name).toString())
  }
  // Names that differ only by case stay apart, on any disk.
  await storage.enqueue('Orders', [job('A'), job('a')])
  assert.deepEqual((await storage.claim('Orders', 'w', claimNow)).map(j => j.id), ['A', 'a'])
  assert.deepEqual(await storage.claim('orders', 'w', claimNow), [])
  assert.equal(await storage.acquireLock('Lock', 'one', 60_000), true)
  assert.equal(await storage.acquireLock('lock', 'two', 60_000), true)
  // Names the storage cannot take are refused before anything is written.
  // A lone surrogate is refused (one rule for every backend: Redis would turn it into U+FFFD).
  for (const bad of ['', 'x'.repeat(1025), 42 as unknown as string, 'x\uD800']) {
    await assert.rejects(storage.enqueue(bad, [job('j')]), InvalidArgumentError)
    await assert.rejects(storage.acquireLock(bad, 'me', 1000), InvalidArgumentError)
  }
  await assert.rejects(storage.enqueue('q', [{ ...job('j'), id: '' }]), InvalidArgumentError)
  assert.equal(await storage.getStatus('q', 'j'), null)
  // Everything lives under basePath, with owner-only modes.
  assert.deepEqual(readdirSync(root), ['base'])
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name)
    return e.isDirectory() ? [path, ...walk(path)] : [path]
  })
  const entries = [basePath, ...walk(basePath)]
  assert.ok(entries.length > hostile.length * 2)
  for (const path of entries) {
    assert.ok(path.startsWith(basePath + '/') || path === basePath, path)
    const { mode } = statSync(path)
    assert.equal(mode & 0o077, 0, `${path} has mode ${(mode & 0o777).toString(8)}`)
    assert.ok(Buffer.byteLength(path.slice(basePath.length)) < 200, `${path} is short`)
  }
})

test('file: a frame torn by a killed writer, a corrupted frame and garbage are skipped by every reader', async t => {
  const basePath = await tempDir(t)
  const a = await open(t, { basePath, watch: false })
  await a.enqueue('q', [job('before')])
  await a.enqueue('other', [job('moved')])
  const q = join(queueDir(basePath, 'q'), 'seg-000000000001.log')
  const moved = readFileSync(join(queueDir(basePath, 'other'), 'seg-000000000001.log')) // one frame (same salt): enqueue of 'moved'
  const reader = await open(t, { basePath, watch: false })
  assert.equal((await reader.counts('q')).queued, 1)
  // Half a frame: to a reader it is a frame being written; it waits, and applies it once whole.
  appendFileSync(q, moved.subarray(0, 20))
  assert.equal((await reader.counts('q')).queued, 1)
  appendFileSync(q, moved.subarray(20))
  assert.deepEqual((await reader.claim('q', 'w', claimNow)).map(j => j.id), ['before', 'moved'])
  // A writer killed mid-write leaves a cut frame; then garbage, zeros, a frame with a flipped byte.
  appendFileSync(q, moved.subarray(0, moved.length - 7))
  appendFileSync(q, Buffer.from('not a frame at all'))
  appendFileSync(q, Buffer.alloc(4096))
  const flipped = Buffer.from(moved)
  flipped[flipped.length - 3] ^= 0xff
  appendFileSync(q, flipped)
  assert.equal((await reader.counts('q')).queued, 0, 'nothing of that is applied')
  // The next writer's frame comes after all of it; the writer and every reader find it.
  assert.deepEqual(await a.enqueue('q', [job('after')]), [{ status: 'queued' }])
  assert.deepEqual((await reader.claim('q', 'w', claimNow)).map(j => j.id), ['after'])
  const fresh = await open(t, { basePath })
  assert.deepEqual(await fresh.counts('q'), { queued: 0, delayed: 0, processing: 3, failing: 0, completed: 0, failed: 0, cancelled: 0 })
})

test('file: full segments are sealed into snapshots; expired records leave the disk; every process agrees', async t => {
  const basePath = await tempDir(t)
  const clock = new FakeClock()
  const options = { basePath, clock: clock.read, segmentSize: 4096 }
  const a = await open(t, options)
  const b = await open(t, options)
  // No history: what stays is the result cache alone, so expired records leave.
  const none = { age: 0, count: 0 }
  await a.setRetention('q', { completed: none, failed: none, cancelled: none })
  const heard: string[] = []
  t.after(await a.subscribe('q', n => { if (n.type === 'done') heard.push(n.id) }))
  for (let i = 0; i < 400; i++) {
    const short = i % 4 !== 0
    await a.enqueue('q', [job(`j${i}`, 'p'.repeat(40), { resultTTL: short ? 1000 : 3_600_000, delay: i % 10 === 0 ? 60_000 : 0, notify: true })])
    const claimed = await b.claim('q', 'w', { max: 1, leaseMs: 30_000, blockMs: 0 })
    await b.settle('q', 'w', claimed.map(j => ({ type: 'complete', id: j.id, attempt: j.attempts, result: Buffer.from(`r${j.id}`), ttl: short ? 1000 : 3_600_000 })), { max: 0, leaseMs: 1 })
    clock.advance(100)
  }
  const files = readdirSync(queueDir(basePath, 'q'))
  assert.ok(files.filter(f => f.startsWith('seg-')).length <= 2, files.join())
  assert.ok(files.filter(f => f.startsWith('snap-')).length <= 2, files.join())
  // Kept: the 80 long-TTL results, and the short-TTL ones of the last second (391, 393-395, 397-399).
  const results = async (s: FileStorage): Promise<number> => {
    const states = await Promise.all(Array.from({ length: 400 }, async (_, i) => (await s.getStatus('q', `j${i}`))?.state))
    return states.filter(state => state === 'completed').length
  }
  assert.equal(await results(a), 87)
  assert.equal(await results(b), 87)
  const expected = { queued: 0, delayed: 40, processing: 0, failing: 0, completed: 0, failed: 0, cancelled: 0 }
  assert.deepEqual(await a.counts('q'), expected)
  assert.deepEqual(await b.counts('q'), expected)
  assert.equal(heard.length, 360, 'every done notice arrived across the rotations')
  const fresh = await open(t, options)
  assert.deepEqual(await fresh.counts('q'), expected)
  assert.equal(await results(fresh), 87)
  assert.equal((await fresh.getStatus('q', 'j396'))?.result?.toString(), 'rj396')
  assert.equal((await fresh.getStatus('q', 'j397'))?.state, 'completed')
  assert.equal(await fresh.getStatus('q', 'j301'), null, 'expired')
  // The delayed jobs come out of the snapshot in due order.
  clock.advance(60_000)
  assert.deepEqual((await fresh.claim('q', 'w', claimNow)).map(j => j.id), Array.from({ length: 40 }, (_, i) => `j${i * 10}`))
})

test('file: a snapshot cut short falls back to the previous generation; a crash\'s temporary files are swept', async t => {
  const basePath = await tempDir(t)
  const writer = await open(t, { basePath, segmentSize: 2048 })
  for (let i = 0; i < 120; i++) await writer.enqueue('q', [job(`j${i}`, 'x'.repeat(60))])
  const dir = queueDir(basePath, 'q')
  const snaps = readdirSync(dir).filter(f => f.startsWith('snap-')).sort()
  assert.equal(snaps.length, 2, readdirSync(dir).join())
  // The newest snapshot loses its second half (a power loss right after its rename), and a
  // process died while writing a temporary file a while ago.
  const newest = join(dir, snaps[1])
  writeFileSync(newest, readFileSync(newest).subarray(0, 100))
  const leftover = join(dir, '.tmp-999999-deadbeef0000')
  writeFileSync(leftover, 'half a snapshot')
  const old = new Date(Date.now() - 120_000)
  utimesSync(leftover, old, old)
  const fresh = await open(t, { basePath })
  assert.equal((await fresh.counts('q')).queued, 120)
  assert.deepEqual((await fresh.claim('q', 'w', { ...claimNow, max: 2 })).map(j => j.id), ['j0', 'j1'])
  assert.ok(!readdirSync(dir).includes('.tmp-999999-deadbeef0000'))
})

test('file: a process that fell behind rotated-away segments reloads from a snapshot and hears a gap', async t => {
  const basePath = await tempDir(t)
  // `late` reads only when called: no watcher, no poll.
  const late = await open(t, { basePath, watch: false, pollInterval: 2 ** 31 - 1, segmentSize: 1024 })
  const busy = await open(t, { basePath, segmentSize: 1024 })
  const gaps: Notice[] = []
  t.after(await late.subscribe('q', n => { if (n.type === 'gap') gaps.push(n) }))
  for (let i = 0; i < 200; i++) await busy.enqueue('q', [job(`j${i}`, 'x'.repeat(64))])
  assert.equal((await late.counts('q')).queued, 200)
  assert.equal(gaps.length, 1)
  assert.deepEqual(await late.enqueue('q', [job('j0'), job('new')]), [{ status: 'duplicate', state: 'queued' }, { status: 'queued' }])
  assert.equal((await busy.counts('q')).queued, 201)
})

test('file: with fsync, every operation resolves once flushed; concurrent ones share flushes', async t => {
  const basePath = await tempDir(t)
  const storage = await open(t, { basePath, fsync: true, segmentSize: 4096 })
  const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => storage.enqueue('q', [job(`j${i}`)])))
  assert.ok(outcomes.every(o => o[0].status === 'queued'))
  const queue = new Queue<number, number>({ storage: new FileStorage({ basePath, fsync: true }), name: 'rpc', concurrency: 10 })
  t.after(() => queue.stop())
  queue.execute(async j => j.payload + 1)
  await queue.start()
  assert.deepEqual(await Promise.all(Array.from({ length: 50 }, (_, i) => queue.enqueueAndWait(`c${i}`, i, { timeout: 30_000 }))), Array.from({ length: 50 }, (_, i) => i + 1))
  assert.equal((await storage.counts('q')).queued, 200)
})

test('file: with fs.watch off, the poll alone delivers results and wakes blocked claims', async t => {
  const basePath = await tempDir(t)
  const options = { basePath, watch: false, pollInterval: 20 }
  const consumer = new Queue<number, number>({ storage: new FileStorage(options), name: 'q', concurrency: 4 })
  t.after(() => consumer.stop())
  consumer.execute(async j => j.payload * 3)
  await consumer.start()
  const producer = new Queue<number, number>({ storage: new FileStorage(options), name: 'q' })
  t.after(() => producer.stop())
  assert.deepEqual(await Promise.all([1, 2, 3].map(n => producer.enqueueAndWait(`n${n}`, n, { timeout: 10_000 }))), [3, 6, 9])
})

test('file: a blocked claim wakes when a delayed job falls due, and ends on disconnect', async t => {
  const basePath = await tempDir(t)
  const storage = await open(t, { basePath })
  await storage.enqueue('q', [job('later', 'p', { delay: 30 })])
  const claimed = await storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 10_000 })
  assert.deepEqual(claimed.map(j => j.id), ['later'])
  const other = new FileStorage({ basePath })
  await other.connect()
  t.after(() => other.disconnect()) // a no-op once the test disconnected it
  const waiting = other.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 60_000 })
  await other.disconnect()
  assert.deepEqual(await waiting, [])
})

test('file: an expired lock is taken over by exactly one contender; a damaged lock file counts as free', async t => {
  const basePath = await tempDir(t)
  const clock = new FakeClock()
  const holder = await open(t, { basePath, clock: clock.read })
  const contenders = await Promise.all(Array.from({ length: 5 }, () => open(t, { basePath, clock: clock.read })))
  assert.equal(await holder.acquireLock('leader', 'dead', 1000), true)
  assert.deepEqual(await Promise.all(contenders.map((c, i) => c.acquireLock('leader', `c${i}`, 1000))), [false, false, false, false, false])
  clock.advance(1001) // the holder died: it never renews
  const won = await Promise.all(contenders.map((c, i) => c.acquireLock('leader', `c${i}`, 1000)))
  assert.equal(won.filter(Boolean).length, 1)
  assert.equal(await holder.acquireLock('leader', 'dead', 1000), false, 'a late renewal does not steal it back')
  // A generation file emptied by a power loss: the lock is free, not stuck.
  const dir = join(basePath, 'locks', readdirSync(join(basePath, 'locks'))[0])
  const newest = readdirSync(dir).filter(f => /^\d+$/.test(f)).sort().pop() as string
  writeFileSync(join(dir, newest), '')
  assert.equal(await holder.acquireLock('leader', 'dead', 1000), true)
})

test('file: bad options throw InvalidArgumentError; an unusable directory or a closed storage gives StorageError', async t => {
  for (const options of [undefined, {}, { basePath: '' }, { basePath: 'x', pollInterval: 0 }, { basePath: 'x', segmentSize: 10 }, { basePath: 'x', fsync: 'yes' }, { basePath: 'x', clock: 5 }]) {
    assert.throws(() => new FileStorage(options as unknown as FileStorageOptions), InvalidArgumentError, JSON.stringify(options))
  }
  const root = await tempDir(t)
  writeFileSync(join(root, 'file'), 'not a directory')
  const broken = new FileStorage({ basePath: join(root, 'file') })
  await assert.rejects(broken.connect(), (err: unknown) => err instanceof StorageError && err.code === 'STORAGE_ERROR' && err.cause !== undefined)
  const closed = new FileStorage({ basePath: root })
  await assert.rejects(closed.enqueue('q', [job('a')]), StorageError)
  // A directory written by another format version is refused, not misread.
  const other = await tempDir(t)
  writeFileSync(join(other, 'relayq-file.json'), JSON.stringify({ format: 99, salt: '00'.repeat(16) }))
  await assert.rejects(new FileStorage({ basePath: other }).connect(), StorageError)
})

test('file: the JS CRC-32 (for Node < 20.15) equals zlib\'s', () => {
  for (const size of [0, 1, 7, 64, 1000]) {
    const data = Buffer.from(Array.from({ length: size }, () => random(256)))
    assert.equal(crc32js(data), crc32(data))
    assert.equal(crc32js(data, 12345), crc32(data, 12345))
  }
})

test('file: a snapshot holds every kind of record and every order exactly (decode, then encode again, gives the same bytes)', () => {
  const state = new QueueState(7)
  const now = 1_000_000
  const add = (id: string, extra: Partial<{ delay: number, notify: boolean, maxAttempts: number }> = {}): void => {
    state.enqueue(now, extra.notify === true ? 7 : 9, [{ id, payload: Buffer.from(`p-${id}`), maxAttempts: extra.maxAttempts ?? 3, resultTTL: 60_000, delay: extra.delay ?? 0, notify: extra.notify }])
  }
  for (const id of ['done', 'bad', 'gone', 'again', 'held', 'stop', 'runs', 'ü-\uD800', 'q1', 'q2']) add(id, { notify: id === 'runs' })
  add('later', { delay: 5_000 })
  add('sooner', { delay: 1_000 })
  const claimed = state.claim(now, 'w1', 7, 30_000).map(job => job.id)
  assert.deepEqual(claimed, ['done', 'bad', 'gone', 'again', 'held', 'stop', 'runs'])
  state.settle(now, 'w1', [
    { type: 'complete', id: 'done', attempt: 1, result: Buffer.from('r'), ttl: 60_000 },
    { type: 'fail', id: 'bad', attempt: 1, error: Buffer.from('e'), ttl: 60_000 },
    { type: 'retry', id: 'again', attempt: 1, error: Buffer.from('e1'), delay: 2_000 },
    { type: 'release', id: 'held', attempt: 1 }
  ])
  state.cancel(now, 'gone') // processing: a cancel request
  state.cancel(now, 'q2') // queued: cancelled at once
  state.settle(now, 'w1', [{ type: 'complete', id: 'stop', attempt: 1, result: Buffer.from('short'), ttl: 1 }])
  state.advance(now + 10) // 'stop''s result expires: only its history remains

  const encode = (s: QueueState): Buffer => {
    const w = new Writer(16)
    encodeState(w, s)
    return Buffer.from(w.buf.subarray(0, w.pos))
  }
  const bytes = encode(state)
  const copy = decodeState(new Reader(bytes), 7)
  assert.deepEqual(encode(copy), bytes)
  for (const id of [...claimed, 'ü-\uD800', 'q1', 'q2', 'later', 'sooner']) assert.deepEqual(copy.status(id, now + 10), state.status(id, now + 10), id)
  assert.equal(copy.status('stop', now + 10), null)
  // Both continue the same way: the same claim order (released job first), the same due order.
  const t = now + 10_000
  assert.deepEqual(copy.claim(t, 'w2', 10, 30_000).map(job => job.id), state.claim(t, 'w2', 10, 30_000).map(job => job.id))
  assert.deepEqual(copy.counts(t), state.counts(t))
  assert.deepEqual(encode(copy), encode(state))
})

test('file: a trace context survives the log (another process replays it), a snapshot, and its absence costs no byte', async t => {
  const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 vendor=abc'
  const basePath = await tempDir(t)
  const writer = await open(t, { basePath })
  const segment = (): number => readdirSync(queueDir(basePath, 'q')).filter(f => f.startsWith('seg-')).reduce((n, f) => n + statSync(join(queueDir(basePath, 'q'), f)).size, 0)
  await writer.enqueue('q', [job('warm')])
  const before = segment()
  await writer.enqueue('q', [job('plain')])
  const plain = segment() - before
  await writer.enqueue('q', [job('bogus', 'payload of bogus', { trace: 'not a trace' })])
  assert.equal(segment() - before, 2 * plain, 'a dropped trace context is not written: the frame is the size of one without')
  await writer.enqueue('q', [job('plain2'), job('traced', 'payload of traced', { trace })])
  const reader = await open(t, { basePath })
  const claimed = await reader.claim('q', 'w', claimNow)
  assert.deepEqual(claimed.map(j => [j.id, j.trace]), [['warm', undefined], ['plain', undefined], ['bogus', undefined], ['plain2', undefined], ['traced', trace]])
  // A snapshot keeps it, and reads it back checked.
  const state = new QueueState(1)
  state.enqueue(1000, 1, [job('a', 'pa', { trace }), job('b')])
  const w = new Writer(16)
  encodeState(w, state)
  const copy = decodeState(new Reader(Buffer.from(w.buf.subarray(0, w.pos))), 1)
  assert.deepEqual(copy.claim(2000, 'w', 10, 1000).map(j => [j.id, j.trace, 'trace' in j]), [['a', trace, true], ['b', undefined, false]])
})

test('file: a format 4 directory opens, keeps its jobs and is upgraded to format 5', async t => {
  const basePath = await tempDir(t)
  const old = await open(t, { basePath })
  await old.enqueue('q', [job('a'), job('b', 'payload of b', { delay: 0 })])
  await old.disconnect()
  // Format 5 writes a job without a trace context as format 4 did: this is a format 4 directory.
  const metaPath = join(basePath, 'relayq-file.json')
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { format: number, salt: string }
  writeFileSync(metaPath, JSON.stringify({ ...meta, format: 4 }) + '\n')
  const storage = await open(t, { basePath })
  assert.deepEqual(JSON.parse(readFileSync(metaPath, 'utf8')), { format: 5, salt: meta.salt })
  const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  await storage.enqueue('q', [job('c', 'payload of c', { trace })])
  assert.deepEqual((await storage.claim('q', 'w', claimNow)).map(j => [j.id, j.trace, j.payload.toString()]),
    [['a', undefined, 'payload of a'], ['b', undefined, 'payload of b'], ['c', trace, 'payload of c']])
})

test('file: the sealer writes the snapshot when idle, at the position it reached; a process loading it replays only what follows', async t => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const basePath = await tempDir(t)
  const clock = new FakeClock()
  const options = { basePath, clock: clock.read, segmentSize: 4096, watch: false }
  const writer = await open(t, options)
  const dir = queueDir(basePath, 'q')
  const files = (prefix: string): string[] => readdirSync(dir).filter(f => f.startsWith(prefix)).sort()
  let n = 0
  await writer.claim('q', 'w', { ...claimNow, max: 1 }) // opens the queue's directory (a read would not)
  while (files('seg-').length < 2) await writer.enqueue('q', [job(`j${n++}`, 'x'.repeat(60))])
  // Sealed, but the snapshot waits for a quiet moment (the new segment is far from half full).
  assert.deepEqual(files('snap-'), [])
  const early = await open(t, options)
  assert.equal((await early.counts('q')).queued, n, 'replayed from the first segment')
  await writer.enqueue('q', [job(`j${n++}`, 'x'.repeat(60))])
  // A claim inside the snapshot: replaying it a second time would claim another job.
  assert.deepEqual((await writer.claim('q', 'w', { ...claimNow, max: 1 })).map(j => j.id), ['j0'])
  t.mock.timers.tick(IDLE_SNAPSHOT)
  assert.deepEqual(files('snap-'), [], 'the writer committed during that period: not idle yet')
  t.mock.timers.tick(IDLE_SNAPSHOT)
  assert.deepEqual(files('snap-'), ['snap-000000000002.bin'])
  // Frames after the snapshot's position are replayed on top of it by a new process.
  await writer.enqueue('q', [job(`j${n++}`, 'x'.repeat(60))])
  await early.enqueue('q', [job('from-early'), job('j0')])
  const late = await open(t, options)
  assert.deepEqual(await late.counts('q'), { queued: n, delayed: 0, processing: 1, failing: 0, completed: 0, failed: 0, cancelled: 0 })
  const order = (await late.claim('q', 'w', { ...claimNow, max: n + 1 })).map(j => j.id)
  assert.deepEqual(order, [...Array.from({ length: n - 1 }, (_, i) => `j${i + 1}`), 'from-early'])
  assert.equal((await writer.counts('q')).processing, n + 1, 'the other processes agree')
})

test('file: a snapshot that cannot be written is dropped without failing anything; the log goes on', async t => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const basePath = await tempDir(t)
  const options = { basePath, segmentSize: 4096, watch: false }
  const writer = await open(t, options)
  await writer.claim('q', 'w', { ...claimNow, max: 1 }) // opens the queue's directory (a read would not)
  const dir = queueDir(basePath, 'q')
  // The snapshot's name is taken by a directory: the rename fails.
  mkdirSync(join(dir, 'snap-000000000002.bin'))
  let n = 0
  while (!readdirSync(dir).includes('seg-000000000002.log')) await writer.enqueue('q', [job(`j${n++}`, 'x'.repeat(60))])
  t.mock.timers.tick(IDLE_SNAPSHOT) // an exception here would fail the test as uncaught
  assert.deepEqual(readdirSync(dir).filter(f => f.startsWith('.tmp-')), [], 'its temporary file is removed')
  assert.deepEqual(await writer.enqueue('q', [job('after')]), [{ status: 'queued' }])
  const fresh = await open(t, options)
  assert.equal((await fresh.counts('q')).queued, n + 1)
})
