import { randomUUID } from 'node:crypto'
import { InvalidArgumentError } from './errors.ts'
import { JsonSerde, type Serde } from './serde.ts'
import type { Storage } from './storage/types.ts'
import type { BackoffOption, LeaderElectionOptions, Logger } from './types.ts'

/** Every default in one place. Durations in ms. */
export const DEFAULTS = Object.freeze({
  name: 'default',
  concurrency: 1,
  maxRetries: 3,
  visibilityTimeout: 30_000,
  resultTTL: 3_600_000,
  blockTimeout: 5_000,
  shutdownTimeout: 10_000,
  timeout: 30_000,
  maxStalls: 1,
  backoff: Object.freeze({ type: 'exponential', delay: 1000, maxDelay: 60_000, jitter: 0.5 }) as BackoffOption,
  leaderElection: Object.freeze({ enabled: true, lockTTL: 30_000, renewalInterval: 10_000, acquireRetryInterval: 5_000 }),
  /** Longest job id and queue name, in UTF-8 bytes. */
  maxIdBytes: 1024
})

/** Largest timer delay Node accepts (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

const SILENT: Logger = { debug () {}, info () {}, warn () {}, error () {} }

function describe (value: unknown): string {
  return `\`${typeof value === 'string' ? value : String(value)}\` (${typeof value})`
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInt (name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, got ${describe(value)}`)
  }
  return value
}

/** An option that may be absent: validated when present, else the default. */
export function optInt (name: string, value: unknown, fallback: number, min: number, max?: number): number {
  return value === undefined ? fallback : checkInt(name, value, min, max)
}

/** Throws unless `value` is a non-empty string of at most `DEFAULTS.maxIdBytes` UTF-8 bytes. */
export function checkId (name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be a non-empty string, got ${describe(value)}`)
  }
  // Cheap check first: a string of n UTF-16 units has at most 3n UTF-8 bytes.
  if (value.length * 3 > DEFAULTS.maxIdBytes && Buffer.byteLength(value) > DEFAULTS.maxIdBytes) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be at most ${DEFAULTS.maxIdBytes} bytes, got ${Buffer.byteLength(value)} bytes`)
  }
  return value
}

function checkSerde<T> (name: string, value: unknown): Serde<T> {
  if (value === undefined) return new JsonSerde<T>()
  const s = value as Serde<T>
  if (typeof s?.serialize !== 'function' || typeof s?.deserialize !== 'function') {
    throw new InvalidArgumentError(`Expected \`${name}\` to have serialize() and deserialize(), got ${describe(value)}`)
  }
  return s
}

function checkStorage (value: unknown): Storage {
  const s = value as Storage
  if (typeof s?.enqueue !== 'function' || typeof s?.claim !== 'function' || typeof s?.settle !== 'function') {
    throw new InvalidArgumentError(`Expected \`storage\` to implement the Storage contract, got ${describe(value)}`)
  }
  return s
}

function checkLogger (value: unknown): Logger {
  if (value === undefined) return SILENT
  const l = value as Logger
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof l?.[level] !== 'function') throw new InvalidArgumentError(`Expected \`logger.${level}\` to be a function, got ${describe(l?.[level])}`)
  }
  return l
}

function checkBackoff (value: unknown): BackoffOption {
  if (value === undefined) return DEFAULTS.backoff
  if (typeof value === 'function') return value as BackoffOption
  const b = value as { type?: unknown, delay?: unknown, maxDelay?: unknown, jitter?: unknown }
  if (b === null || typeof b !== 'object' || (b.type !== 'exponential' && b.type !== 'fixed')) {
    throw new InvalidArgumentError(`Expected \`backoff\` to be a function or { type: 'exponential' | 'fixed', delay }, got ${describe(value)}`)
  }
  checkInt('backoff.delay', b.delay, 0, MAX_TIMER_MS)
  if (b.maxDelay !== undefined) checkInt('backoff.maxDelay', b.maxDelay, 0, MAX_TIMER_MS)
  if (b.jitter !== undefined && (typeof b.jitter !== 'number' || !(b.jitter >= 0 && b.jitter <= 1))) {
    throw new InvalidArgumentError(`Expected \`backoff.jitter\` to be a number from 0 to 1, got ${describe(b.jitter)}`)
  }
  return value as BackoffOption
}

/** Validated leader-election settings. */
export interface LeaderElection { enabled: boolean, lockTTL: number, renewalInterval: number, acquireRetryInterval: number }

function checkLeaderElection (value: LeaderElectionOptions | undefined): LeaderElection {
  const d = DEFAULTS.leaderElection
  const v = value ?? {}
  if (v.enabled !== undefined && typeof v.enabled !== 'boolean') {
    throw new InvalidArgumentError(`Expected \`leaderElection.enabled\` to be a boolean, got ${describe(v.enabled)}`)
  }
  const lockTTL = optInt('leaderElection.lockTTL', v.lockTTL, d.lockTTL, 1, MAX_TIMER_MS)
  return {
    enabled: v.enabled ?? d.enabled,
    lockTTL,
    renewalInterval: optInt('leaderElection.renewalInterval', v.renewalInterval, Math.min(d.renewalInterval, Math.ceil(lockTTL / 3)), 1, MAX_TIMER_MS),
    acquireRetryInterval: optInt('leaderElection.acquireRetryInterval', v.acquireRetryInterval, Math.min(d.acquireRetryInterval, lockTTL), 1, MAX_TIMER_MS)
  }
}

/** Everything any relayq component may be configured with, validated and defaulted. */
export interface ResolvedConfig<TPayload, TResult> {
  storage: Storage
  name: string
  workerId: string
  concurrency: number
  maxRetries: number
  visibilityTimeout: number
  resultTTL: number
  blockTimeout: number
  shutdownTimeout: number
  maxStalls: number
  reaper: boolean
  interval: number
  backoff: BackoffOption
  leaderElection: LeaderElection
  payloadSerde: Serde<TPayload>
  resultSerde: Serde<TResult>
  logger: Logger
  afterExecution: ((context: any) => void | Promise<void>) | undefined
}

/** The one validation pass: throws InvalidArgumentError naming the first bad option. */
export function resolveConfig<TPayload, TResult> (config: Record<string, any>): ResolvedConfig<TPayload, TResult> {
  if (config === null || typeof config !== 'object') throw new InvalidArgumentError(`Expected the configuration to be an object, got ${describe(config)}`)
  const c = config
  if (c.workerId !== undefined) checkId('workerId', c.workerId)
  if (c.reaper !== undefined && typeof c.reaper !== 'boolean') throw new InvalidArgumentError(`Expected \`reaper\` to be a boolean, got ${describe(c.reaper)}`)
  // Accepted (and checked) for compatibility with @platformatic/job-queue; nothing here needs it.
  if (c.processingQueueTTL !== undefined) checkInt('processingQueueTTL', c.processingQueueTTL, 1)
  if (c.afterExecution !== undefined && typeof c.afterExecution !== 'function') {
    throw new InvalidArgumentError(`Expected \`afterExecution\` to be a function, got ${describe(c.afterExecution)}`)
  }
  const visibilityTimeout = optInt('visibilityTimeout', c.visibilityTimeout, DEFAULTS.visibilityTimeout, 10, MAX_TIMER_MS)
  return {
    storage: checkStorage(c.storage),
    name: c.name === undefined ? DEFAULTS.name : checkId('name', c.name),
    workerId: c.workerId ?? randomUUID(),
    concurrency: optInt('concurrency', c.concurrency, DEFAULTS.concurrency, 1, 100_000),
    maxRetries: optInt('maxRetries', c.maxRetries, DEFAULTS.maxRetries, 1),
    visibilityTimeout,
    resultTTL: optInt('resultTTL', c.resultTTL, DEFAULTS.resultTTL, 1),
    blockTimeout: optInt('blockTimeout', c.blockTimeout, DEFAULTS.blockTimeout, 1, MAX_TIMER_MS),
    shutdownTimeout: optInt('shutdownTimeout', c.shutdownTimeout, DEFAULTS.shutdownTimeout, 0, MAX_TIMER_MS),
    maxStalls: optInt('maxStalls', c.maxStalls, DEFAULTS.maxStalls, 0),
    reaper: c.reaper ?? true,
    interval: optInt('interval', c.interval, Math.max(1, Math.floor(visibilityTimeout / 2)), 1, MAX_TIMER_MS),
    backoff: checkBackoff(c.backoff),
    leaderElection: checkLeaderElection(c.leaderElection),
    payloadSerde: checkSerde<TPayload>('payloadSerde', c.payloadSerde),
    resultSerde: checkSerde<TResult>('resultSerde', c.resultSerde),
    logger: checkLogger(c.logger),
    afterExecution: c.afterExecution
  }
}

/** Validated per-job options. `runTimeout` is the job's `visibilityTimeout` (0: the consumer's). */
export interface JobOptions { maxAttempts: number, resultTTL: number, delay: number, timeout: number, runTimeout: number }

/** Validates `enqueue`/`enqueueAndWait` options against the queue's defaults. */
export function resolveJobOptions (options: Record<string, unknown> | undefined, config: { maxRetries: number, resultTTL: number }): JobOptions {
  if (options === undefined) return { maxAttempts: config.maxRetries, resultTTL: config.resultTTL, delay: 0, timeout: DEFAULTS.timeout, runTimeout: 0 }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`Expected options to be an object, got ${describe(options)}`)
  return {
    maxAttempts: optInt('maxAttempts', options.maxAttempts, config.maxRetries, 1),
    resultTTL: optInt('resultTTL', options.resultTTL, config.resultTTL, 1),
    delay: optInt('delay', options.delay, 0, 0, MAX_TIMER_MS),
    timeout: optInt('timeout', options.timeout, DEFAULTS.timeout, 1, MAX_TIMER_MS),
    runTimeout: optInt('visibilityTimeout', options.visibilityTimeout, 0, 10, MAX_TIMER_MS)
  }
}

/** The delay before the retry that follows failed attempt `attempt` (1-based), in ms. */
export function backoffDelay (backoff: BackoffOption, attempt: number, error: Error, random = Math.random): number {
  if (typeof backoff === 'function') {
    const ms = backoff(attempt, error)
    return Number.isFinite(ms) && ms > 0 ? Math.min(Math.round(ms), MAX_TIMER_MS) : 0
  }
  const base = backoff.type === 'fixed'
    ? backoff.delay
    : Math.min(backoff.delay * 2 ** (attempt - 1), (backoff.maxDelay ?? MAX_TIMER_MS))
  // Jitter removes up to `jitter` of the delay at random so that failed jobs do not retry in lockstep.
  const jitter = backoff.jitter ?? 0
  return Math.round(base * (1 - jitter * random()))
}
