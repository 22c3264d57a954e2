/**
 * A consumer in its own process, forked by bench/backends.ts (`forkConsumer`) for the backends that
 * share state across processes (redis, file). Protocol over IPC:
 *   bench → child `init { config }`   child opens and connects the storage, answers `ready`
 *   bench → child `start { options }` child starts a Consumer (timing starts), answers `started`,
 *                                     then `reached { stats }` once `options.target` jobs completed
 *   bench → child `stop`              child stops, answers `stopped { stats }` and exits
 * Stats include this process's CPU time (`process.cpuUsage()`), i.e. the consumer's alone.
 */
import type { Storage } from '../src/index.ts'
import { loadStorageFactory, runConsumer, type FromChild, type RunningConsumer, type ToChild } from './backends.ts'

let storage: Storage | undefined
let running: RunningConsumer | undefined
let stopped = false

function send (msg: FromChild): void {
  process.send?.(msg)
}

function fail (err: unknown): void {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) })
}

async function onMessage (msg: ToChild): Promise<void> {
  switch (msg.type) {
    case 'init': {
      storage = (await loadStorageFactory(msg.config))()
      await storage.connect()
      send({ type: 'ready' })
      break
    }
    case 'start': {
      if (storage === undefined) throw new Error('start before init')
      running = await runConsumer(storage, msg.options, 'child')
      send({ type: 'started' })
      running.reached.then(stats => send({ type: 'reached', stats }), fail)
      break
    }
    case 'stop': {
      stopped = true
      const stats = running !== undefined ? await running.stop() : { completed: 0, elapsedMs: 0, cpuUs: 0, where: 'child' as const }
      await storage?.disconnect()
      send({ type: 'stopped', stats })
      process.disconnect() // nothing else keeps this process alive: it exits
      break
    }
  }
}

if (process.send === undefined) {
  console.error('bench/consumer-child.ts is started by bench/run.ts, not by hand')
  process.exitCode = 1
} else {
  process.on('message', (msg: ToChild) => { onMessage(msg).catch(fail) })
  // The bench died or closed the channel: do not linger.
  process.on('disconnect', () => {
    if (stopped) return // our own disconnect after `stop`: the process exits by itself
    if (running === undefined) process.exit(0)
    else running.stop().catch(() => {}).finally(() => process.exit(0))
  })
}
