/** `redis://` and `rediss://` (and Redis Cluster with `--cluster`): a RedisStorage. */
import { readFile } from 'node:fs/promises'
import type { ClusterOptions, RedisOptions } from 'iovalkey'
import { RedisStorage } from '../storage/redis.ts'
import type { AdminStorage } from '../storage/types.ts'
import { ConnectError, maskUrl, type Connection, type ConnectOptions } from './connect.ts'

export async function open (url: URL, options: ConnectOptions): Promise<Connection> {
  const tls = await tlsOptions(url, options)
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new ConnectError(`--url: '${url.pathname.slice(1)}' is not a database number`)
  // Fail fast: a command line must not wait 15 s of reconnects to say the server is down.
  const redisOptions: RedisOptions = {
    connectTimeout: options.connectTimeout,
    maxRetriesPerRequest: 1,
    retryStrategy: times => times > 2 ? null : 100 * times,
    ...(tls !== undefined && { tls })
  }
  const cluster = options.cluster
  const label = maskUrl(url.href) + (cluster === undefined ? '' : ` (cluster ${cluster.join(',')})`)
  const credentials = {
    ...(url.username !== '' && { username: decodeURIComponent(url.username) }),
    ...(url.password !== '' && { password: decodeURIComponent(url.password) })
  }
  const clusterOptions: ClusterOptions = { redisOptions: { ...redisOptions, ...credentials }, clusterRetryStrategy: times => times > 2 ? null : 100 * times }
  const storage = new RedisStorage({
    ...(options.prefix !== undefined && { keyPrefix: options.prefix }),
    ...(cluster === undefined
      ? { url: url.href, redisOptions: { ...redisOptions, ...(db > 0 && { db }) } }
      : { cluster: [...cluster], clusterOptions })
  })
  storage.on('error', () => {}) // connection errors reject the calls that hit them
  try {
    await storage.connect()
  } catch (err) {
    throw new ConnectError(`cannot connect to ${label}: ${reason(err)}`, { cause: err })
  }
  return {
    storage: storage as unknown as AdminStorage,
    label,
    diagnose: async doctor => {
      const { diagnoseRedis } = await import('./doctor-redis.ts')
      return await diagnoseRedis(url, cluster, { ...redisOptions, ...credentials, ...(db > 0 && { db }) }, clusterOptions, doctor)
    },
    close: () => storage.disconnect()
  }
}

/** TLS for rediss:// or when TLS files are given; files read here so a missing one is named. */
async function tlsOptions (url: URL, options: ConnectOptions): Promise<RedisOptions['tls']> {
  const files = { ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey }
  if (url.protocol !== 'rediss:' && Object.values(files).every(f => f === undefined)) return undefined
  const tls: Record<string, Buffer> = {}
  for (const [name, path] of Object.entries(files)) {
    if (path === undefined) continue
    try {
      tls[name] = await readFile(path)
    } catch (err) {
      throw new ConnectError(`--tls-${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  return tls
}

/** The innermost useful message of a connection failure (the server's or the socket's). */
export function reason (err: unknown): string {
  let e = err as (Error & { cause?: unknown }) | undefined
  while (e?.cause instanceof Error) e = e.cause as Error & { cause?: unknown }
  return e?.message ?? String(err)
}
