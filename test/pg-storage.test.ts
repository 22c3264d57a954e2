import { randomBytes } from 'node:crypto'
import { after } from 'node:test'
import { PgStorage } from '../src/storage/pg.ts'
import { startPg } from './fixtures/pg-server.ts'
import { queueTests } from './queue-suite.ts'
import { storageContract, type StorageHandle } from './storage-contract.ts'

const db = await startPg()
after(() => db.stop())

/**
 * Storages over one fresh schema. The schemas go with the database when the file ends: a test's
 * cleanup may run before its queue stops, which still releases its reaper lock.
 */
function handle (clock?: () => number): StorageHandle {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const make = (): PgStorage => new PgStorage({ connectionString: db.url, schema, clock, poolSize: 4 })
  return { storage: make(), another: make, cleanup: async () => {} }
}

storageContract('postgres', async clock => handle(clock))
queueTests('postgres', async () => handle())
