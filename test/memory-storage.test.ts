import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryStorage } from '../src/storage/memory.ts'
import { FakeClock, job, storageContract, type StorageFactory } from './storage-contract.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'

const memory: StorageFactory = async clock => {
  const storage = new MemoryStorage({ clock })
  return { storage, another: () => storage, cleanup: async () => {} }
}
storageContract('memory', memory)
adminTests('memory', memory)
modelTests('memory', memory, { runs: 300 })

test('memory: expired records are swept from memory, not only hidden', async t => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const clock = new FakeClock()
  const storage = new MemoryStorage({ clock: clock.read, sweepInterval: 1000 })
  await storage.connect()
  t.after(() => storage.disconnect())
  await storage.setRetention('q', { completed: { age: 2000, count: 10 }, failed: { age: 0, count: 0 }, cancelled: { age: 0, count: 0 } })
  await storage.enqueue('q', [job('a', 'p', { resultTTL: 500 })])
  const [a] = await storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 0 })
  await storage.settle('q', 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('1'), ttl: 500 }], { max: 0, leaseMs: 1000 })
  assert.equal((await storage.counts('q')).completed, 1)
  assert.equal(storage.size, 1)
  clock.advance(501)
  t.mock.timers.tick(1000)
  assert.equal(storage.size, 1, 'the result expired; the history stays')
  assert.equal(await storage.getStatus('q', 'a'), null)
  clock.advance(1500)
  t.mock.timers.tick(1000)
  assert.equal(storage.size, 0, 'the history expired too')
  assert.equal((await storage.counts('q')).completed, 0)
})

test('memory: a blocked claim wakes when a delayed job falls due', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  await storage.connect()
  t.after(() => storage.disconnect())
  await storage.enqueue('q', [job('later', 'p', { delay: 5000 })])
  const waiting = storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 60_000 })
  t.mock.timers.tick(5000)
  assert.deepEqual((await waiting).map(j => j.id), ['later'])
})

test('memory: disconnect ends blocked claims', async t => {
  const storage = new MemoryStorage()
  await storage.connect()
  const waiting = storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 60_000 })
  await storage.disconnect()
  assert.deepEqual(await waiting, [])
})

test('memory: a due timer runs only while a claim is parked, and disconnect clears every timer', async t => {
  // Track the timers the storage creates: the ones not fired or cleared are still pending.
  const pending = new Set<unknown>()
  const { setTimeout: realTimeout, setInterval: realInterval, clearTimeout: realClear } = globalThis
  const track = (set: typeof setTimeout, repeat: boolean) => (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle = set(() => {
      if (!repeat) pending.delete(handle)
      fn(...args)
    }, ms)
    pending.add(handle)
    return handle
  }
  const clear = (handle: unknown): void => {
    pending.delete(handle)
    realClear(handle as ReturnType<typeof setTimeout>)
  }
  t.mock.method(globalThis, 'setTimeout', track(realTimeout, false))
  t.mock.method(globalThis, 'setInterval', track(realInterval as typeof setTimeout, true))
  t.mock.method(globalThis, 'clearTimeout', clear)
  t.mock.method(globalThis, 'clearInterval', clear)

  const storage = new MemoryStorage()
  await storage.connect()
  assert.equal(pending.size, 1, 'the TTL sweeper')
  await storage.enqueue('q', [job('later', 'p', { delay: 60_000 })])
  assert.equal(pending.size, 1, 'no due timer while nobody waits')
  const waiting = storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 60_000 })
  assert.equal(pending.size, 3, 'the sweeper, the claim\'s wait and the due timer')
  await storage.disconnect()
  assert.deepEqual(await waiting, [])
  assert.equal(pending.size, 0)
})
