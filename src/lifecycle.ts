import { QueueClosedError } from './errors.ts'
import type { Logger } from './types.ts'

/**
 * Where a component is in its life. `idle`: never started, or its last start failed (a call that
 * opens it on first use may start it); `stopped`: stopped by `stop()` (only `start()` reopens it).
 */
export type LifecycleState = 'idle' | 'starting' | 'started' | 'stopping' | 'stopped'

/** Registers how to undo one step of a start. */
export type Defer = (undo: () => unknown) => void

/** What a component gives its {@link Lifecycle}. */
export interface LifecycleHooks {
  /** Named in log lines: `queue`, `producer`, `consumer`, `reaper`. */
  readonly name: string
  /** The component's logger: every transition is logged at `debug`. */
  readonly logger: Logger
  /** Where the failure of a stop nobody awaits goes (see {@link Lifecycle.stopSoon}). */
  readonly report: (error: Error, msg: string) => void
  /** Logged with the `starting` line (for example the concurrency). */
  readonly details?: Record<string, unknown>
  /**
   * Brings the component up. Each step that needs undoing registers its undo with `defer`: if a
   * later step throws, the undos registered so far run at once (newest first), so a failed start
   * leaves nothing open and the next start begins afresh; otherwise `stop()` runs them.
   */
  start (defer: Defer): Promise<void>
  /**
   * Runs at every stop before the undos, whatever the state (also when the component never
   * started: a producer connects on first use without `start()`).
   */
  stop? (): Promise<void>
  /** Called once started (a Queue emits `started`). */
  started? (): void
  /** Called once a started component has stopped (a Queue emits `stopped`). */
  stopped? (): void
}

interface Request {
  readonly op: 'start' | 'stop'
  /** Settles when the transition is over. */
  readonly done: Promise<void>
  /** Resolves when the transition begins. */
  readonly begun: Promise<void>
}

/**
 * The start/stop state machine shared by Queue, Producer, Consumer and Reaper.
 *
 * - Every component is restartable: `start()` after `stop()` starts it again, as often as wanted.
 * - Calls take effect in the order they are made, one transition at a time: `stop()` during a start
 *   waits for the start to finish, then stops (the `start()` promise resolves: it did start);
 *   `start()` during a stop waits for the stop to finish, then starts again.
 * - A repeated call returns the promise of the one before while it stands: `start()` while starting
 *   or started, `stop()` while stopping or stopped.
 * - A failed start is not remembered: the component is `idle` again, having undone its partial
 *   start, and the next call tries afresh.
 * - A stop always ends `stopped`; if a step of it failed, its promise rejects with the first error
 *   once every other step has run.
 */
export class Lifecycle {
  readonly #hooks: LifecycleHooks
  #state: LifecycleState = 'idle'
  #undos: Array<() => unknown> = []
  /** The last transition asked for, while it stands (a failed start is forgotten). */
  #last: Request | undefined
  /** Transitions run one after another, in the order they were asked for. */
  #tail: Promise<unknown> = Promise.resolve()

  constructor (hooks: LifecycleHooks) {
    this.#hooks = hooks
  }

  get state (): LifecycleState { return this.#state }

  /** True once started, until a stop begins. */
  get started (): boolean { return this.#state === 'started' }

  /** The promise of the start asked for last (pending or resolved), unless a stop was asked for since. */
  get opening (): Promise<void> | undefined {
    return this.#last?.op === 'start' ? this.#last.done : undefined
  }

  start (): Promise<void> {
    return this.opening ?? this.#request('start').done
  }

  stop (): Promise<void> {
    return this.#last?.op === 'stop' ? this.#last.done : this.#request('stop').done
  }

  /**
   * Asks for a stop and resolves as soon as it has begun (the component takes no more work) rather
   * than when it is over; a failure of the rest goes to the `report` hook. For a job handler that
   * stops its own queue: the stop waits for running jobs, the caller's among them.
   */
  stopSoon (): Promise<void> {
    const request = this.#last?.op === 'stop' ? this.#last : this.#request('stop')
    request.done.catch((err: Error) => this.#hooks.report(err, `Stopping the ${this.#hooks.name} failed`))
    return request.begun
  }

  /**
   * For calls that open the component on first use: resolves once started, starting it if idle;
   * rejects with QueueClosedError after `stop()`, until `start()` is called.
   */
  ready (): Promise<void> {
    if (this.#last?.op === 'stop') return Promise.reject(new QueueClosedError())
    return this.start()
  }

  #request (op: 'start' | 'stop'): Request {
    let begin: () => void = () => {}
    const begun = new Promise<void>(resolve => { begin = resolve })
    const done = this.#tail.then(() => {
      begin()
      return op === 'start' ? this.#start() : this.#stop()
    })
    const request: Request = { op, done, begun }
    this.#last = request
    // Registered before any caller's handler, so a caller that retries on failure finds it forgotten.
    this.#tail = done.then(undefined, () => {
      if (op === 'start' && this.#last === request) this.#last = undefined
    })
    return request
  }

  async #start (): Promise<void> {
    const { name, logger } = this.#hooks
    this.#state = 'starting'
    logger.debug(this.#hooks.details ?? {}, `${name} starting`)
    const undos: Array<() => unknown> = []
    this.#undos = undos
    try {
      await this.#hooks.start(undo => { undos.push(undo) })
    } catch (err) {
      this.#undos = []
      const failed = await unwind(undos)
      if (failed !== undefined) logger.debug({ err: failed }, `${name}: undoing a failed start failed`)
      this.#state = 'idle'
      logger.debug({ err }, `${name} start failed`)
      throw err
    }
    this.#state = 'started'
    logger.debug({}, `${name} started`)
    this.#tell(this.#hooks.started)
  }

  async #stop (): Promise<void> {
    const { name, logger } = this.#hooks
    const wasStarted = this.#state === 'started'
    if (wasStarted) {
      this.#state = 'stopping'
      logger.debug({}, `${name} stopping`)
    }
    const undos = this.#undos
    this.#undos = []
    let failure: unknown
    if (this.#hooks.stop !== undefined) {
      try {
        await this.#hooks.stop()
      } catch (err) {
        failure = err
      }
    }
    // Without a stop hook the newest undo starts in this very tick: a consumer stops claiming
    // as the stop begins (what stopSoon() promises).
    const undone = await unwind(undos)
    failure ??= undone
    this.#state = 'stopped'
    if (wasStarted) {
      logger.debug({}, `${name} stopped`)
      this.#tell(this.#hooks.stopped)
    }
    if (failure !== undefined) throw failure
  }

  /** Runs a `started`/`stopped` hook: an event listener that throws must not undo the transition. */
  #tell (hook: (() => void) | undefined): void {
    try {
      hook?.()
    } catch (err) {
      this.#hooks.report(err as Error, `A ${this.#hooks.name} event listener failed`)
    }
  }
}

/** Runs undos newest first, each even if one before failed; resolves the first failure, if any. */
async function unwind (undos: Array<() => unknown>): Promise<unknown> {
  let failure: unknown
  for (let i = undos.length - 1; i >= 0; i--) {
    try {
      await undos[i]()
    } catch (err) {
      failure ??= err
    }
  }
  return failure
}

/**
 * The logger a component logs through: `logger.child(bindings)` when the logger has `child` (pino),
 * else the logger itself. A `child` that throws or returns no logger falls back to the logger.
 */
export function componentLogger (logger: Logger, bindings: Record<string, unknown>): Logger {
  if (typeof logger.child !== 'function') return logger
  try {
    const child = logger.child(bindings)
    if (typeof child?.debug === 'function' && typeof child.warn === 'function' && typeof child.error === 'function' && typeof child.info === 'function') return child
  } catch {
    // A broken child() must not stop the component from being made; its parent logs instead.
  }
  return logger
}
