/**
 * The dashboard's writes: operator actions through Admin, each first answered as a dry run (the
 * count the confirmation states), then run as a task in bounded chunks whose progress the page
 * polls and which can be stopped between two chunks. Every action also comes back as the
 * equivalent `relayq` command line.
 */
import { randomBytes } from 'node:crypto'
import type { Admin, BulkResult, Selector } from '../admin.ts'
import { InvalidArgumentError } from '../errors.ts'
import type { AdminAction, JobState } from '../storage/types.ts'
import { jobsCommand, purgeCommand, queueCommand, type Target } from './commands.ts'

/** What a request may ask the dashboard to do; `authorize(req, action)` receives one of these. */
export type DashboardAction = 'view' | AdminAction | 'pause' | 'resume' | 'purge'

/** The write actions, by their name in the URL. */
export const WRITE_ACTIONS: ReadonlySet<string> = new Set(['retry', 'remove', 'cancel', 'promote', 'pause', 'resume', 'purge'])

/** Ids one request may name (a page at most). */
const MAX_IDS = 1000
/** Jobs per chunk: one atomic storage step each. */
const CHUNK = 500
/** How long a finished task's outcome stays readable, in ms. */
const TASK_KEEP = 10 * 60_000
/** Tasks that may run at once. */
const MAX_RUNNING = 4

/** A bulk action running (or done) in the background. */
export interface TaskView {
  id: string
  action: DashboardAction
  queue: string
  /** Jobs the dry run matched when the task started. */
  total: number
  count: number
  skipped: number
  done: boolean
  /** Stopped on request before the end. */
  stopped: boolean
  /** Set when the task failed; the message of the error. */
  error?: string
  command: string
}

interface Task extends TaskView {
  controller: AbortController
  endedAt?: number
}

/** What an action answers: a dry run's count, or a task to follow; `command` is the shell line that does the same (not its dry run). */
export type ActionAnswer =
  | { dryRun: true, count: number, skipped: number, command: string }
  | { dryRun: false, task: TaskView }
  | { dryRun: false, done: true, command: string }

/** Runs dashboard actions and keeps their tasks. */
export class Actions {
  readonly #admin: Admin
  readonly #tasks = new Map<string, Task>()
  readonly #changed: () => void

  /** `changed` is called whenever an action may have changed counts (the sampler's cache is dropped). */
  constructor (admin: Admin, changed: () => void) {
    this.#admin = admin
    this.#changed = changed
  }

  /** A task's state, or undefined when unknown (or forgotten TASK_KEEP ms after it ended). */
  task (id: string): TaskView | undefined {
    this.#sweep()
    const task = this.#tasks.get(id)
    return task === undefined ? undefined : view(task)
  }

  /** Asks a task to stop after its current chunk; false when unknown. */
  stop (id: string): boolean {
    const task = this.#tasks.get(id)
    if (task === undefined) return false
    task.controller.abort()
    return true
  }

  /** Stops every running task (on close). */
  stopAll (): void {
    for (const task of this.#tasks.values()) task.controller.abort()
  }

  /** Validates and runs (or dry-runs) `action` on `queue` with the request's JSON body. */
  async run (queue: string, action: DashboardAction, body: unknown): Promise<ActionAnswer> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('Expected the request body to be a JSON object')
    const input = body as Record<string, unknown>
    const dryRun = input.dryRun ?? false
    if (typeof dryRun !== 'boolean') throw new InvalidArgumentError('Expected `dryRun` to be a boolean')

    if (action === 'pause' || action === 'resume') {
      const command = queueCommand(action, queue)
      if (dryRun) {
        const stats = await this.#admin.counts(queue)
        const c = stats.counts
        return { dryRun: true, count: c.queued + c.delayed + c.failing, skipped: 0, command }
      }
      await (action === 'pause' ? this.#admin.pause(queue) : this.#admin.resume(queue))
      this.#changed()
      return { dryRun: false, done: true, command }
    }

    if (action === 'purge') {
      const state = input.state
      if (typeof state !== 'string') throw new InvalidArgumentError('Expected `state` to be a job state')
      const olderThan = optionalMs(input.olderThan, 'olderThan')
      const command = purgeCommand(queue, state, olderThan)
      const options = { state: state as JobState, chunkSize: CHUNK, ...(olderThan !== undefined && { olderThan }) }
      if (dryRun) return dry(await this.#admin.purge(queue, { ...options, dryRun: true }), command)
      const total = (await this.#admin.purge(queue, { ...options, dryRun: true })).count
      return { dryRun: false, task: this.#start(queue, action, total, command, o => this.#admin.purge(queue, { ...options, ...o })) }
    }

    if (action !== 'retry' && action !== 'remove' && action !== 'cancel' && action !== 'promote') throw new InvalidArgumentError(`Unknown action ${String(action)}`)
    const { selector, target } = parseSelector(input)
    const command = jobsCommand(action, queue, target)
    const call = (o: { dryRun?: boolean, signal?: AbortSignal, onProgress?: (p: { count: number, skipped: number }) => void }): Promise<BulkResult> =>
      this.#admin[action](queue, selector, { ...o, chunkSize: CHUNK })
    if (dryRun) return dry(await call({ dryRun: true }), command)
    const total = (await call({ dryRun: true })).count
    return { dryRun: false, task: this.#start(queue, action, total, command, call) }
  }

  #start (queue: string, action: DashboardAction, total: number, command: string,
    call: (o: { signal: AbortSignal, onProgress: (p: { count: number, skipped: number }) => void }) => Promise<BulkResult>): TaskView {
    this.#sweep()
    const running = [...this.#tasks.values()].filter(t => !t.done).length
    if (running >= MAX_RUNNING) throw new BusyError(`${running} bulk actions are running: wait for one to end`)
    const controller = new AbortController()
    const task: Task = { id: randomBytes(12).toString('base64url'), action, queue, total, count: 0, skipped: 0, done: false, stopped: false, command, controller }
    this.#tasks.set(task.id, task)
    call({
      signal: controller.signal,
      onProgress: p => {
        task.count = p.count
        task.skipped = p.skipped
        this.#changed()
      }
    }).then(result => {
      task.count = result.count
      task.skipped = result.skipped
      task.stopped = result.cursor !== null
    }, (err: unknown) => {
      task.error = err instanceof Error ? err.message : String(err)
    }).finally(() => {
      task.done = true
      task.endedAt = Date.now()
      this.#changed()
    })
    return view(task)
  }

  #sweep (): void {
    const now = Date.now()
    for (const [id, task] of this.#tasks) if (task.endedAt !== undefined && now - task.endedAt > TASK_KEEP) this.#tasks.delete(id)
  }
}

/** Too many tasks run at once (answered 429). */
export class BusyError extends Error {}

function view (task: Task): TaskView {
  const { controller: _c, endedAt: _e, ...rest } = task
  return { ...rest }
}

function dry (result: BulkResult, command: string): ActionAnswer {
  return { dryRun: true, count: result.count, skipped: result.skipped, command }
}

function optionalMs (value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`Expected \`${name}\` to be a duration in ms (an integer >= 0), got ${JSON.stringify(value)}`)
  return value
}

/** `{ ids: [...] }` or `{ selector: { state, olderThan?, errorGroup? } }`, exactly one. */
function parseSelector (input: Record<string, unknown>): { selector: Selector, target: Target } {
  const { ids, selector } = input
  if ((ids === undefined) === (selector === undefined)) throw new InvalidArgumentError('Expected exactly one of `ids` (a list of job ids) and `selector` ({ state, olderThan?, errorGroup? })')
  if (ids !== undefined) {
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_IDS || !ids.every(id => typeof id === 'string')) {
      throw new InvalidArgumentError(`Expected \`ids\` to be a list of 1 to ${MAX_IDS} job ids`)
    }
    return { selector: ids as string[], target: { ids: ids as string[] } }
  }
  if (selector === null || typeof selector !== 'object' || Array.isArray(selector)) throw new InvalidArgumentError('Expected `selector` to be { state, olderThan?, errorGroup? }')
  const s = selector as Record<string, unknown>
  for (const key of Object.keys(s)) {
    if (key !== 'state' && key !== 'olderThan' && key !== 'errorGroup') throw new InvalidArgumentError(`Expected \`selector\` to have state, olderThan or errorGroup, got \`${key}\``)
  }
  if (typeof s.state !== 'string') throw new InvalidArgumentError('Expected `selector.state` to be a job state')
  const olderThan = optionalMs(s.olderThan, 'selector.olderThan')
  const errorGroup = s.errorGroup === undefined || s.errorGroup === null ? undefined : s.errorGroup
  if (errorGroup !== undefined && typeof errorGroup !== 'string') throw new InvalidArgumentError('Expected `selector.errorGroup` to be a failure group key')
  const where = { state: s.state as JobState, ...(olderThan !== undefined && { olderThan }), ...(errorGroup !== undefined && { errorGroup }) }
  return { selector: where, target: where }
}
