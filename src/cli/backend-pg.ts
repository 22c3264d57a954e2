/** `postgres://` and `postgresql://`: a PgStorage (`--prefix`: its table prefix). Needs the `pg` package. */
import { PgStorage } from '../storage/pg.ts'
import { reason } from './connect-error.ts'
import { ConnectError, maskUrl, type Connection, type ConnectOptions } from './connect.ts'

export async function open (url: URL, options: ConnectOptions): Promise<Connection> {
  const label = maskUrl(url.href)
  const storage = new PgStorage({
    connectionString: url.href,
    poolSize: 2,
    connectTimeout: options.connectTimeout,
    ...(options.prefix !== undefined && { tablePrefix: options.prefix })
  })
  storage.on('error', () => {}) // connection errors reject the calls that hit them
  try {
    await storage.connect()
  } catch (err) {
    throw new ConnectError(`cannot connect to ${label}: ${reason(err)}`, { cause: err })
  }
  return { storage, label, close: () => storage.disconnect() }
}
