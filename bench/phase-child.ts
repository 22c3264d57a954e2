/**
 * Phases of an in-process store's suite (memory) in a process of their own, one after the other,
 * each on a target opened here: see `PhaseChild` in bench/suite.ts. Exits on `exit` or when the
 * bench goes away.
 */
import { execPhase, type FromPhaseChild, type ToPhaseChild } from './suite.ts'
import { openTarget } from './spec.ts'

if (process.send === undefined) {
  console.error('bench/phase-child.ts is started by bench/run.ts, not by hand')
  process.exitCode = 1
} else {
  const send = (reply: FromPhaseChild): void => { process.send?.(reply) }
  process.on('message', (msg: ToPhaseChild) => {
    if (msg.type === 'exit') {
      process.disconnect()
      return
    }
    const cleanup: string[] = []
    ;(async () => {
      const target = await openTarget(msg.spec, what => cleanup.push(what))
      try {
        return await execPhase(target, msg.phase, false)
      } finally {
        await target.close()
      }
    })().then(result => send({ type: 'done', result, cleanup }), (err: Error) => send({ type: 'error', message: err.message }))
  })
  process.on('disconnect', () => process.exit(0))
}
