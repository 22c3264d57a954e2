/**
 * The child side of a forked consumer (see `forkConsumer` in bench/backends.ts). Protocol over IPC:
 *   bench → child `init { config }`   child prepares (opens connections), answers `ready`
 *   bench → child `start { options }` child starts a consumer (timing starts), answers `started`,
 *                                     then `reached { stats }` once `options.target` jobs completed
 *   bench → child `stop`              child stops the consumer, releases what `init` opened,
 *                                     answers `stopped { stats }`, and waits for the next `init`
 *   bench → child `exit`              child exits
 * A child serves one drain after another, so the JIT warm-up of one run carries over to the next
 * (a fresh process per drain measured its own start-up, not the steady state).
 * Stats include this process's CPU time (`process.cpuUsage()`), i.e. the consumer's alone.
 */
import type { ConsumerOptions, FromChild, RunningConsumer, ToChild } from './backends.ts'

/** What a child prepares at `init`: a way to start its consumer, and to release what it opened. */
export interface ConsumerHost {
  start (options: ConsumerOptions): Promise<RunningConsumer>
  close (): Promise<void>
}

/** Serves the protocol above in this (forked) process; `prepare` turns the `init` config into a host. */
export function serveConsumer<TConfig> (script: string, prepare: (config: TConfig) => Promise<ConsumerHost>): void {
  if (process.send === undefined) {
    console.error(`${script} is started by bench/run.ts, not by hand`)
    process.exitCode = 1
    return
  }
  let host: ConsumerHost | undefined
  let running: RunningConsumer | undefined
  let stopped = false
  const send = (msg: FromChild): void => { process.send?.(msg) }
  const fail = (err: unknown): void => { send({ type: 'error', message: err instanceof Error ? err.message : String(err) }) }

  const onMessage = async (msg: ToChild<TConfig>): Promise<void> => {
    switch (msg.type) {
      case 'init': {
        host = await prepare(msg.config)
        send({ type: 'ready' })
        break
      }
      case 'start': {
        if (host === undefined) throw new Error('start before init')
        running = await host.start(msg.options)
        send({ type: 'started' })
        running.reached.then(stats => send({ type: 'reached', stats }), fail)
        break
      }
      case 'stop': {
        const stats = running !== undefined ? await running.stop() : { completed: 0, elapsedMs: 0, cpuUs: 0, where: 'child' as const }
        running = undefined
        await host?.close()
        host = undefined
        send({ type: 'stopped', stats })
        break
      }
      case 'exit': {
        stopped = true
        process.disconnect() // nothing else keeps this process alive: it exits
        break
      }
    }
  }

  process.on('message', (msg: ToChild<TConfig>) => { onMessage(msg).catch(fail) })
  // The bench died or closed the channel: do not linger.
  process.on('disconnect', () => {
    if (stopped) return // our own disconnect after `stop`: the process exits by itself
    if (running === undefined) process.exit(0)
    else running.stop().catch(() => {}).finally(() => process.exit(0))
  })
}
