/**
 * A relayq consumer in its own process, forked by bench/backends.ts (`forkConsumer`) for the
 * backends that share state across processes (redis, file). The IPC protocol is in
 * bench/child-server.ts; `init` opens and connects the storage.
 */
import { loadStorageFactory, runConsumer, type BackendConfig } from './backends.ts'
import { serveConsumer } from './child-server.ts'

serveConsumer<BackendConfig>('bench/consumer-child.ts', async config => {
  const storage = (await loadStorageFactory(config))()
  await storage.connect()
  return {
    start: options => runConsumer(storage, options, 'child'),
    close: () => storage.disconnect()
  }
})
