/** `file:///path`: a FileStorage directory on this host. */
import { stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { FileStorage } from '../storage/file.ts'
import { ConnectError, type Connection, type ConnectOptions } from './connect.ts'

export async function open (url: URL, _options: ConnectOptions): Promise<Connection> {
  if (url.host !== '' && url.host !== 'localhost') throw new ConnectError(`--url: ${url.href}: a file URL names a local directory (file:///path)`)
  const basePath = fileURLToPath(url)
  // FileStorage creates a missing directory; an operator's typo must not.
  const info = await stat(basePath).catch(() => undefined)
  if (info?.isDirectory() !== true) throw new ConnectError(`--url: ${basePath} is not a directory`)
  const storage = new FileStorage({ basePath, watch: false })
  try {
    await storage.connect()
  } catch (err) {
    throw new ConnectError(`cannot open ${basePath}: ${(err as Error).message}`, { cause: err })
  }
  return {
    storage,
    label: url.href,
    close: () => storage.disconnect()
  }
}
