/**
 * The consumer of bench/soak.ts in its own process (Redis, File). Protocol over IPC:
 *   soak → child `start { config, queue }`  child connects and starts a `Queue` consumer (concurrency 50,
 *                                           echo handler), answers `started`
 *   soak → child `sample`                   child answers `sample` with its memory and CPU time
 *   soak → child `stop`                     child stops the consumer, answers `stopped`, and exits
 */
import { loadStorageFactory, runConsumer, type BackendConfig, type RunningConsumer } from './backends.ts'
import { processSample, type SoakFromChild, type SoakToChild } from './soak-sample.ts'

if (process.send === undefined) {
  console.error('bench/soak-child.ts is started by bench/soak.ts, not by hand')
  process.exitCode = 1
} else {
  let running: RunningConsumer | undefined
  const send = (msg: SoakFromChild): void => { process.send?.(msg) }
  const handle = async (msg: SoakToChild<BackendConfig>): Promise<void> => {
    if (msg.type === 'start') {
      const storage = (await loadStorageFactory(msg.config))()
      running = await runConsumer(storage, { queue: msg.queue, concurrency: msg.concurrency, handler: 'echo', target: 0, api: 'queue' }, 'child')
      send({ type: 'started' })
    } else if (msg.type === 'sample') {
      send({ type: 'sample', sample: processSample() })
    } else {
      const stats = await running?.stop()
      running = undefined
      send({ type: 'stopped', completed: stats?.completed ?? 0 })
      process.disconnect()
    }
  }
  process.on('message', (msg: SoakToChild<BackendConfig>) => {
    handle(msg).catch((err: Error) => send({ type: 'error', message: err.message }))
  })
  process.on('disconnect', () => {
    if (running === undefined) return
    running.stop().catch(() => {}).finally(() => process.exit(0))
  })
}
