/**
 * Times a consumer the same way for every library: from {@link CompletionClock.start} (right
 * before the consumer starts claiming) to its `target`-th completion, with this process's CPU
 * time (`process.cpuUsage()`) over the same span.
 */
import type { ConsumerStats } from './backends.ts'

export class CompletionClock {
  /** Resolves at the `target`-th completion; rejects at the first failed job. Never resolves for target 0. */
  readonly reached: Promise<ConsumerStats>
  readonly #target: number
  readonly #where: ConsumerStats['where']
  #completed = 0
  #t0 = 0
  #cpu0: NodeJS.CpuUsage = { user: 0, system: 0 }
  #last = 0 // when the target was reached, or when stop() was called
  #isReached = false
  #resolve: (stats: ConsumerStats) => void = () => {}
  #reject: (err: Error) => void = () => {}

  constructor (target: number, where: ConsumerStats['where']) {
    this.#target = target
    this.#where = where
    this.reached = new Promise<ConsumerStats>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.reached.catch(() => {}) // reported to whoever awaits `reached`
  }

  /** Starts timing: call right before the consumer starts claiming. */
  start (): void {
    this.#cpu0 = process.cpuUsage()
    this.#t0 = performance.now()
  }

  /** Counts one completed job. */
  completed (): void {
    this.#completed++
    if (this.#completed === this.#target) {
      this.#isReached = true
      this.#last = performance.now()
      this.#resolve(this.#stats())
    }
  }

  /** A job failed: the run is invalid. */
  failed (detail: string): void {
    this.#reject(new Error(`a job failed in the consumer: ${detail}`))
  }

  /** The stats at stop: elapsed up to the target if it was reached, else up to now. */
  stop (): ConsumerStats {
    if (!this.#isReached) this.#last = performance.now()
    return this.#stats()
  }

  #stats (): ConsumerStats {
    const cpu = process.cpuUsage(this.#cpu0)
    return { completed: this.#completed, elapsedMs: this.#last - this.#t0, cpuUs: cpu.user + cpu.system, where: this.#where }
  }
}
