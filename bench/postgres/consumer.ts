/**
 * A consumer process of the PostgreSQL bench, driven over IPC: `start` {lib, url, queue,
 * concurrency, target} opens the library's consumer and answers `ready`; it answers `done` with its
 * CPU time and elapsed ms (from its first job on) once `target` jobs were handled (0: never), and
 * exits on `stop`.
 */
import { startConsumer, type ConsumerHandle, type LibId } from './libs.ts'

interface Start { lib: LibId, url: string, queue: string, concurrency: number, target: number }

let consumer: ConsumerHandle | undefined
process.on('message', (msg: { type: 'start', config: Start } | { type: 'stop' }) => {
  if (msg.type === 'stop') {
    const closing = consumer?.close() ?? Promise.resolve()
    closing.finally(() => process.exit(0)).catch(() => {})
    return
  }
  const { lib, url, queue, concurrency, target } = msg.config
  let handled = 0
  let cpu0 = process.cpuUsage()
  let t0 = 0
  // The clock starts at the first job handled: connecting and a library's own start-up are not
  // processing. The first job is not counted.
  startConsumer(lib, url, queue, concurrency, () => {
    if (++handled === 1) {
      cpu0 = process.cpuUsage()
      t0 = performance.now()
    } else if (handled === target) {
      const cpu = process.cpuUsage(cpu0)
      process.send?.({ type: 'done', jobs: target - 1, cpuUs: cpu.user + cpu.system, ms: performance.now() - t0 })
    }
  }).then(c => {
    consumer = c
    process.send?.({ type: 'ready' })
  }, (err: Error) => {
    process.send?.({ type: 'error', message: err.message })
  })
})
