import { randomUUID } from 'node:crypto'
import { describeValue, InvalidArgumentError, ResultTTLError } from './errors.ts'
import { toError } from './job-error.ts'
import { checkLogger } from './logger.ts'
import { JsonSerde, type Serde } from './serde.ts'
import type { Storage } from './storage/types.ts'
import type { BackoffOption, LeaderElectionOptions, Logger } from './types.ts'

/** Every default in one place. Durations in ms, except `blockTimeout` (seconds, as in @platformatic/job-queue). */
export const DEFAULTS = Object.freeze({
  name: 'default',
  concurrency: 1,
  /** Jobs a consumer claims ahead of its free slots (held leased until a slot frees). */
  prefetch: 0,
  maxRetries: 3,
  visibilityTimeout: 30_000,
  resultTTL: 3_600_000,
  /** Seconds. */
  blockTimeout: 5,
  shutdownTimeout: 10_000,
  /** Longest `stop()` takes beyond `shutdownTimeout` (storage calls of the teardown). */
  stopTimeout: 5_000,
  /** RedisStorage: longest connect, TCP and handshake included. */
  connectTimeout: 10_000,
  /** RedisStorage: longest wait for the answer to one command (blocking claims excepted: they wait `blockTimeout`). */
  commandTimeout: 10_000,
  timeout: 30_000,
  maxStalls: 1,
  backoff: Object.freeze({ type: 'exponential', delay: 1000, maxDelay: 60_000, jitter: 0.5 }) as BackoffOption,
  /** A standalone Reaper does not elect unless asked (as @platformatic/job-queue); a Queue's own reaper does. */
  leaderElection: Object.freeze({ enabled: false, lockTTL: 30_000, renewalInterval: 10_000, acquireRetryInterval: 5_000 }),
  /** Longest job id and queue name, in UTF-8 bytes. */
  maxIdBytes: 1024
})

/** Largest timer delay Node accepts (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1

function describe (value: unknown): string {
  return `\`${describeValue(value)}\` (${value === null ? 'null' : typeof value})`
}

/**
 * The option names each component accepts: every option of @platformatic/job-queue is among them,
 * including the ones relayq checks but does not need. Any other name throws.
 */
const PRODUCER_OPTIONS = ['storage', 'name', 'payloadSerde', 'resultSerde', 'maxRetries', 'resultTTL', 'logger', 'stopTimeout'] as const
const CONSUMER_OPTIONS = [
  ...PRODUCER_OPTIONS, 'workerId', 'concurrency', 'prefetch', 'visibilityTimeout', 'blockTimeout', 'backoff', 'shutdownTimeout',
  'afterExecution', 'processingQueueTTL'
] as const
export const OPTION_NAMES = {
  Producer: PRODUCER_OPTIONS,
  Consumer: CONSUMER_OPTIONS,
  Queue: [...CONSUMER_OPTIONS, 'reaper', 'maxStalls', 'leaderElection', 'interval'],
  Reaper: ['storage', 'name', 'payloadSerde', 'visibilityTimeout', 'interval', 'maxStalls', 'leaderElection', 'logger', 'stopTimeout']
} as const satisfies Record<string, readonly string[]>

/** Edit distance, case-insensitive: `keyprefix` is one step from `keyPrefix`, not nine. */
function distance (a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}

/**
 * Throws InvalidArgumentError for an option name `what` does not know (its value not `undefined`),
 * naming the closest known one: a typo such as `concurency` or `keyprefix` would otherwise be
 * ignored silently.
 */
export function checkOptionNames (what: string, options: object, known: readonly string[]): void {
  for (const key in options) {
    if (!Object.hasOwn(options, key) || known.includes(key) || (options as Record<string, unknown>)[key] === undefined) continue
    let best = known[0]
    for (const name of known) if (distance(key, name) < distance(key, best)) best = name
    throw new InvalidArgumentError(`Unknown option \`${key}\` for ${what}; did you mean \`${best}\`? (known: ${known.join(', ')})`)
  }
}

/**
 * Validates a storage constructor's options object: an object (or undefined) whose option names
 * are all in `known` (InvalidArgumentError naming the closest one otherwise).
 */
export function checkStorageOptions<T extends object> (what: string, options: T | undefined, known: readonly string[]): Partial<T> {
  const o = checkOptionsObject(what, options)
  checkOptionNames(what, o, known)
  return o as Partial<T>
}

/** A storage's `clock` option: a function returning epoch ms. @default Date.now */
export function checkClock (value: unknown): () => number {
  if (value === undefined) return Date.now
  if (typeof value !== 'function') throw new InvalidArgumentError(`Expected \`clock\` to be a function returning epoch ms, got ${describe(value)}`)
  return value as () => number
}

/** The options of `config` that `component` knows (a Queue hands its reaper only the reaper's). */
export function pickOptions<T extends object> (config: T, component: keyof typeof OPTION_NAMES): T {
  const known: readonly string[] = OPTION_NAMES[component]
  return Object.fromEntries(Object.entries(config).filter(([key]) => known.includes(key))) as T
}

/** Throws InvalidArgumentError unless `value` is an options object (undefined allowed). */
export function checkOptionsObject (what: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object') throw new InvalidArgumentError(`Expected the options of ${what} to be an object, got ${describe(value)}`)
  return value as Record<string, unknown>
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

/**
 * True unless `value` holds a lone UTF-16 surrogate, which Redis and file names would turn into
 * U+FFFD (`String.prototype.isWellFormed`, Node 20+; TypeScript's lib has it from es2024).
 */
export function isWellFormed (value: string): boolean {
  return (value as unknown as { isWellFormed: () => boolean }).isWellFormed()
}

/**
 * Throws unless `value` is a non-empty, well-formed string (no lone UTF-16 surrogate: Redis would
 * turn it into U+FFFD and two ids would collide, so no backend accepts one) of at most
 * `DEFAULTS.maxIdBytes` UTF-8 bytes.
 */
export function checkId (name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be a non-empty string, got ${describe(value)}`)
  }
  if (!isWellFormed(value)) {
    throw new InvalidArgumentError(`Expected \`${name}\` to be a well-formed string, got one with a lone UTF-16 surrogate: ${JSON.stringify(value).slice(0, 100)}`)
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

/** Throws a {@link ResultTTLError} unless `value` is a positive integer (ms). */
export function checkResultTTL (value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new ResultTTLError(describe(value))
  return value
}

/** `blockTimeout` (seconds, fractions allowed, as in @platformatic/job-queue) in ms. */
function blockMs (value: unknown): number {
  if (value === undefined) return DEFAULTS.blockTimeout * 1000
  if (typeof value !== 'number' || !(value > 0) || value * 1000 > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`Expected \`blockTimeout\` to be a number of seconds > 0 and <= ${Math.floor(MAX_TIMER_MS / 1000)}, got ${describe(value)}`)
  }
  return Math.max(1, Math.round(value * 1000))
}

function checkBackoff (value: unknown): BackoffOption {
  if (value === undefined) return DEFAULTS.backoff
  if (typeof value === 'function') return value as BackoffOption
  const b = value as { type?: unknown, delay?: unknown, maxDelay?: unknown, jitter?: unknown }
  if (b === null || typeof b !== 'object' || (b.type !== 'exponential' && b.type !== 'fixed')) {
    throw new InvalidArgumentError(`Expected \`backoff\` to be a function or { type: 'exponential' | 'fixed', delay }, got ${describe(value)}`)
  }
  checkOptionNames('`backoff`', b, ['type', 'delay', 'maxDelay', 'jitter'])
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
  const v: LeaderElectionOptions = checkOptionsObject('`leaderElection`', value)
  checkOptionNames('`leaderElection`', v, ['enabled', 'lockTTL', 'renewalInterval', 'acquireRetryInterval'])
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
  /** Jobs claimed ahead of free slots (see ConsumerConfig.prefetch). */
  prefetch: number
  maxRetries: number
  visibilityTimeout: number
  resultTTL: number
  /** `blockTimeout` in ms. */
  blockMs: number
  shutdownTimeout: number
  stopTimeout: number
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

/**
 * The one validation pass: throws InvalidArgumentError naming the first bad option (or an unknown
 * option name, with the closest one `component` knows).
 */
export function resolveConfig<TPayload, TResult> (config: Record<string, any>, component: keyof typeof OPTION_NAMES): ResolvedConfig<TPayload, TResult> {
  if (config === null || typeof config !== 'object') throw new InvalidArgumentError(`Expected the configuration to be an object, got ${describe(config)}`)
  const c = config
  checkOptionNames(component, c, OPTION_NAMES[component])
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
    prefetch: optInt('prefetch', c.prefetch, DEFAULTS.prefetch, 0, 100_000),
    maxRetries: optInt('maxRetries', c.maxRetries, DEFAULTS.maxRetries, 1),
    visibilityTimeout,
    resultTTL: c.resultTTL === undefined ? DEFAULTS.resultTTL : checkResultTTL(c.resultTTL),
    blockMs: blockMs(c.blockTimeout),
    shutdownTimeout: optInt('shutdownTimeout', c.shutdownTimeout, DEFAULTS.shutdownTimeout, 0, MAX_TIMER_MS),
    stopTimeout: optInt('stopTimeout', c.stopTimeout, DEFAULTS.stopTimeout, 1, MAX_TIMER_MS),
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

/** Option names of `enqueue` (and `enqueueMany` jobs); `enqueueAndWait` adds `timeout`. */
const ENQUEUE_OPTIONS = ['maxAttempts', 'resultTTL', 'delay', 'visibilityTimeout'] as const
const WAIT_OPTIONS = [...ENQUEUE_OPTIONS, 'timeout'] as const

/** Validates `enqueue` (`wait` false) or `enqueueAndWait` options against the queue's defaults. */
export function resolveJobOptions (options: Record<string, unknown> | undefined, config: { maxRetries: number, resultTTL: number }, wait = false): JobOptions {
  if (options === undefined) return { maxAttempts: config.maxRetries, resultTTL: config.resultTTL, delay: 0, timeout: DEFAULTS.timeout, runTimeout: 0 }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`Expected options to be an object, got ${describe(options)}`)
  checkOptionNames(wait ? 'enqueueAndWait' : 'enqueue', options, wait ? WAIT_OPTIONS : ENQUEUE_OPTIONS)
  return {
    maxAttempts: optInt('maxAttempts', options.maxAttempts, config.maxRetries, 1),
    resultTTL: options.resultTTL === undefined ? config.resultTTL : checkResultTTL(options.resultTTL),
    delay: optInt('delay', options.delay, 0, 0, MAX_TIMER_MS),
    timeout: optInt('timeout', options.timeout, DEFAULTS.timeout, 1, MAX_TIMER_MS),
    runTimeout: optInt('visibilityTimeout', options.visibilityTimeout, 0, 10, MAX_TIMER_MS)
  }
}

/**
 * The delay before the retry that follows failed attempt `attempt` (1-based), in ms. A backoff
 * function's answer is rounded and capped at {@link MAX_TIMER_MS} (negative: 0); one that throws
 * or answers something other than a number (or NaN) gets the default backoff instead, and
 * `logger.warn` says so.
 */
export function backoffDelay (backoff: BackoffOption, attempt: number, error: Error, random = Math.random, logger?: Logger): number {
  if (typeof backoff === 'function') {
    let ms: unknown
    let thrown: Error | undefined
    try {
      ms = backoff(attempt, error)
    } catch (err) {
      thrown = toError(err)
    }
    if (typeof ms === 'number' && !Number.isNaN(ms)) return ms > 0 ? Math.min(Math.round(ms), MAX_TIMER_MS) : 0
    const fallback = backoffDelay(DEFAULTS.backoff, attempt, error, random)
    const what = thrown === undefined ? `returned ${describe(ms)}` : `threw: ${thrown.message}`
    logger?.warn({ attempt, delay: fallback, err: thrown }, `The backoff function ${what}; the default backoff applies (${fallback} ms)`)
    return fallback
  }
  const base = backoff.type === 'fixed'
    ? backoff.delay
    : Math.min(backoff.delay * 2 ** (attempt - 1), (backoff.maxDelay ?? MAX_TIMER_MS))
  // Jitter removes up to `jitter` of the delay at random so that failed jobs do not retry in lockstep.
  const jitter = backoff.jitter ?? 0
  return Math.round(base * (1 - jitter * random()))
}
