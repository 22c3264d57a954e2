import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryStorage } from '../src/storage/memory.ts'
import { FakeClock, job, storageContract } from './storage-contract.ts'

storageContract('memory', async clock => {
  const storage = new MemoryStorage({ clock })
  return { storage, another: () => storage, cleanup: async () => {} }
})

test('memory: expired records are swept from memory, not only hidden', async t => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const clock = new FakeClock()
  const storage = new MemoryStorage({ clock: clock.read, sweepInterval: 1000 })
  await storage.connect()
  t.after(() => storage.disconnect())
  await storage.enqueue('q', [job('a', 'p', { resultTTL: 500 })])
  const [a] = await storage.claim('q', 'w', { max: 1, leaseMs: 1000, blockMs: 0 })
  await storage.settle('q', 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('1'), ttl: 500 }], { max: 0, leaseMs: 1000 })
  assert.equal((await storage.counts('q')).completed, 1)
  assert.equal(storage.size, 1)
  clock.advance(501)
  t.mock.timers.tick(1000)
  assert.equal(storage.size, 0)
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
