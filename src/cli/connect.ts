/**
 * URL → storage: one entry per scheme, each a lazy import, so that `relayq` against a file
 * directory never loads the Redis client and a new backend plugs in with one line.
 */
import type { AdminStorage } from '../storage/types.ts'
import type { DoctorOptions, Finding } from './doctor.ts'

/** The connection flags every command shares. */
export interface ConnectOptions {
  /** `--prefix` / `--key-prefix`: namespace of the keys (Redis) or tables (PostgreSQL). */
  readonly prefix: string | undefined
  /** `--cluster host:port,...`: Redis Cluster seed nodes (the URL gives credentials and TLS). */
  readonly cluster: readonly string[] | undefined
  readonly tlsCa: string | undefined
  readonly tlsCert: string | undefined
  readonly tlsKey: string | undefined
  /** Longest wait for the server, in ms. */
  readonly connectTimeout: number
}

/** An open storage, as commands use it. */
export interface Connection {
  readonly storage: AdminStorage
  /** The URL without its password, for messages. */
  readonly label: string
  /** Checks specific to the backend (server settings, cluster coverage, clock). */
  readonly diagnose?: (options: DoctorOptions) => Promise<Finding[]>
  close (): Promise<void>
}

/** What a backend module exports. */
export interface Backend {
  open (url: URL, options: ConnectOptions): Promise<Connection>
}

/** Schemes and the module that opens them. */
const BACKENDS: Readonly<Record<string, () => Promise<Backend>>> = {
  'redis:': () => import('./backend-redis.ts'),
  'rediss:': () => import('./backend-redis.ts'),
  'file:': () => import('./backend-file.ts')
  // 'postgres:' and 'postgresql:' → './backend-pg.ts' once PgStorage (branch pg, src/storage/pg/) lands.
}

/** A failure to reach or open the storage: one line for the user, the cause kept for --verbose. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError'
}

/** `redis://user:secret@host` → `redis://user:***@host`. */
export function maskUrl (raw: string): string {
  try {
    const url = new URL(raw)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return raw.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@')
  }
}

/** Opens the storage `raw` names. Throws ConnectError with a one-line message when it cannot. */
export async function connect (raw: string, options: ConnectOptions): Promise<Connection> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConnectError(`--url: '${maskUrl(raw)}' is not a URL (expected redis://host:port, rediss://..., or file:///path)`)
  }
  if (url.protocol === 'memory:') {
    throw new ConnectError('--url: a MemoryStorage lives inside one process: the command line cannot reach it (use redis:// or file://)')
  }
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
    throw new ConnectError('--url: PostgreSQL storage is not available in this version of relayq yet')
  }
  const load = BACKENDS[url.protocol]
  if (load === undefined) {
    throw new ConnectError(`--url: unsupported scheme '${url.protocol}' (expected ${Object.keys(BACKENDS).map(s => `${s}//`).join(', ')})`)
  }
  const backend = await load()
  return await backend.open(url, options)
}
