import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, test } from 'node:test'
import { Cluster, type Redis } from 'iovalkey'
import { Queue, StorageError } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'
import { queueTests } from './queue-suite.ts'
import { job, storageContract, type StorageHandle } from './storage-contract.ts'

const cluster = await startRedisCluster()
after(() => cluster.stop())

/** Deletes every key of a prefix (its queues' and its own) on every master (SCAN runs per node in a cluster). */
async function deleteClusterKeys (prefix: string): Promise<void> {
  const client = new Cluster(cluster.nodes, { lazyConnect: true })
  client.on('error', () => {})
  try {
    await client.connect()
    for (const node of client.nodes('master')) {
      for (const pattern of [`{${prefix}:*`, `{${prefix}}:*`]) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
          cursor = next
          for (const key of keys) await node.unlink(key)
        } while (cursor !== '0')
      }
    }
  } finally {
    client.disconnect()
  }
}

function handle (clock?: () => number): StorageHandle {
  const prefix = `t-${randomUUID()}`
  const make = (): RedisStorage => new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix, clock })
  return { storage: make(), another: make, cleanup: () => deleteClusterKeys(prefix) }
}

storageContract('redis cluster', async clock => handle(clock))
queueTests('redis cluster', async () => handle())
adminTests('redis cluster', async clock => handle(clock))
modelTests('redis cluster', async clock => handle(clock), { runs: 30 })

test('clear deletes the prefix\'s keys on every master, and queues() lists queues of every slot', async t => {
  const prefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix })
  storage.on('error', err => { throw err })
  await storage.connect()
  t.after(async () => {
    await storage.disconnect()
    await deleteClusterKeys(prefix)
  })
  const names = Array.from({ length: 24 }, (_, i) => `q${String(i).padStart(2, '0')}`)
  for (const name of names) await storage.enqueue(name, [job('a'), job('b', 'p', { delay: 60_000 })])
  assert.equal(await storage.acquireLock('leader', 'me', 60_000), true)
  assert.deepEqual((await storage.queues()).map(s => s.name), names)
  const perMaster = async (): Promise<number[]> => {
    const client = new Cluster(cluster.nodes, { lazyConnect: true })
    client.on('error', () => {})
    await client.connect()
    try {
      return await Promise.all(client.nodes('master').map(async node => {
        let count = 0
        for (const pattern of [`{${prefix}:*`, `{${prefix}}:*`]) {
          let cursor = '0'
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
            cursor = next
            count += keys.length
          } while (cursor !== '0')
        }
        return count
      }))
    } finally {
      client.disconnect()
    }
  }
  const before = await perMaster()
  assert.equal(before.length, 3)
  assert.ok(before.every(n => n > 0), `every master holds some queue: ${before.join(', ')}`)
  await storage.clear()
  assert.deepEqual(await perMaster(), [0, 0, 0])
  assert.deepEqual(await storage.queues(), [])
  assert.equal(await storage.acquireLock('leader', 'other', 60_000), true)
})

test('a frozen cluster (every master stopped): calls reject with StorageError after commandTimeout, stop() returns; thawed, the queue works again (13.4)', { timeout: 30_000 }, async t => {
  const keyPrefix = `t-${randomUUID()}`
  t.after(() => deleteClusterKeys(keyPrefix))
  const clustered = new RedisStorage({ cluster: cluster.nodes, keyPrefix, commandTimeout: 400 })
  const queue = new Queue<number, number>({ storage: clustered, name: 'frozen', shutdownTimeout: 100, stopTimeout: 300 })
  const errors: Error[] = []
  queue.on('error', err => errors.push(err))
  queue.execute(async job => job.payload)
  await queue.start()
  t.after(() => queue.stop())
  assert.equal(await queue.enqueueAndWait('before', 1, { timeout: 5000 }), 1)
  cluster.pause()
  t.after(() => cluster.resume()) // when the test fails while frozen; resuming twice is harmless
  await assert.rejects(queue.enqueue('during', 2), (err: unknown) => err instanceof StorageError && /commandTimeout \(400 ms\)/.test(err.message))
  await queue.stop()
  assert.ok(errors.some(err => /stopped without waiting any longer/.test(err.message)), errors.map(e => e.message).join('; '))
  cluster.resume()
  await queue.start()
  assert.equal(await queue.enqueueAndWait('after', 3, { timeout: 10_000 }), 3)
})

/** Masters of the test cluster, each with its node id, through a client of the test's own. */
async function masters (t: { after: (fn: () => void) => void }): Promise<{ admin: Cluster, nodes: Array<{ key: string, id: string, node: Redis }> }> {
  const admin = new Cluster(cluster.nodes, { lazyConnect: true })
  admin.on('error', () => {})
  await admin.connect()
  t.after(() => admin.disconnect())
  const nodes = await Promise.all(admin.nodes('master').map(async node => ({
    key: `${node.options.host ?? ''}:${node.options.port ?? ''}`,
    id: String(await node.cluster('MYID')),
    node
  })))
  return { admin, nodes }
}

/** Channels of `pattern` that clients subscribed to on `node` (PUBSUB is per node in a cluster). */
async function channelsOn (node: Redis, pattern: string): Promise<string[]> {
  return (await node.pubsub('CHANNELS', pattern) as string[]).sort()
}

/** Moves `slot` from master `from` to master `to`, keys included, and tells every master. */
async function moveSlot (slot: number, from: { id: string, node: Redis }, to: { id: string, node: Redis }, all: Redis[]): Promise<void> {
  await to.node.cluster('SETSLOT', slot, 'IMPORTING', from.id)
  await from.node.cluster('SETSLOT', slot, 'MIGRATING', to.id)
  const { host, port } = to.node.options
  for (;;) {
    const keys = await from.node.cluster('GETKEYSINSLOT', slot, 100) as string[]
    if (keys.length === 0) break
    await from.node.migrate(host ?? '127.0.0.1', port ?? 6379, '', 0, 5000, 'KEYS', ...keys)
  }
  for (const node of all) await node.cluster('SETSLOT', slot, 'NODE', to.id)
}

/**
 * A Queue on the test cluster that answered one call, the masters, and the one owning the queue's
 * slot, plus a promise of the storage's next `gap` notice (counted in `gaps()`).
 */
async function queueOnCluster (t: { after: (fn: () => unknown) => void }, name: string) {
  const keyPrefix = `t-${randomUUID()}`
  t.after(() => deleteClusterKeys(keyPrefix))
  const storage = new RedisStorage({ cluster: cluster.nodes, keyPrefix })
  storage.on('error', () => {}) // a killed connection reports its drop
  const queue = new Queue<number, number>({ storage, name })
  queue.execute(async job => job.payload)
  await queue.start()
  t.after(() => queue.stop())
  assert.equal(await queue.enqueueAndWait('a', 1, { timeout: 5000 }), 1)
  const { admin, nodes } = await masters(t)
  const tag = `{${keyPrefix}:${name}}`
  const slot = Number(await admin.cluster('KEYSLOT', tag))
  const owner = nodes.find(n => n.key === admin.slots[slot][0])
  assert.ok(owner !== undefined)
  let gaps = 0
  let sawGap: () => void = () => {}
  const gap = new Promise<void>(resolve => { sawGap = resolve })
  t.after(await storage.subscribe(name, notice => {
    if (notice.type !== 'gap') return
    gaps++
    sawGap()
  }))
  return { queue, nodes, tag, slot, owner, gap, gaps: () => gaps }
}

test('pub/sub on a cluster: a queue\'s channels are subscribed on the master owning its slot, and move with the slot', { timeout: 30_000 }, async t => {
  const { queue, nodes, tag, slot, owner, gap, gaps } = await queueOnCluster(t, 'moving')
  const where = async (): Promise<string[]> => {
    const found: string[] = []
    for (const n of nodes) if ((await channelsOn(n.node, `${tag}*`)).length > 0) found.push(n.key)
    return found
  }
  // The consumer's control channel and the producer's reply channel, both on the owner only.
  assert.equal((await channelsOn(owner.node, `${tag}*`)).length, 2)
  assert.deepEqual(await where(), [owner.key])

  const target = nodes.find(n => n.key !== owner.key)
  assert.ok(target !== undefined)
  await moveSlot(slot, owner, target, nodes.map(n => n.node))
  // The storage learns of the move from its next command (MOVED), then moves its subscriptions.
  assert.equal(await queue.enqueueAndWait('b', 2, { timeout: 10_000 }), 2)
  await gap
  assert.ok(gaps() >= 1)
  assert.deepEqual(await where(), [target.key])
  assert.equal(await queue.enqueueAndWait('c', 3, { timeout: 5000 }), 3)
})

test('pub/sub on a cluster: a node\'s subscriber connection killed reconnects, subscribes again and reports a gap', { timeout: 30_000 }, async t => {
  const { queue, tag, owner, gap } = await queueOnCluster(t, 'killed')
  const before = await channelsOn(owner.node, `${tag}*`)
  assert.equal(before.length, 2)
  assert.ok(Number(await owner.node.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 1)
  await gap
  assert.deepEqual(await channelsOn(owner.node, `${tag}*`), before)
  assert.equal(await queue.enqueueAndWait('b', 2, { timeout: 5000 }), 2)
})
