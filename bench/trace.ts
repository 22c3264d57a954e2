/**
 * Timestamps of a call's way through relayq, taken from outside the library so that nothing is
 * added to its hot path when the bench does not trace:
 * - {@link traceStorage} wraps a Storage (a Proxy, whatever methods the contract has): when an
 *   enqueue or a settle is called and answered, when a claim hands a job over, when a `done`
 *   notice reaches the producer;
 * - {@link traceRedisCommands} patches iovalkey's `sendCommand` while a trace runs: when each of
 *   relayq's scripts and BLMOVEs is handed to its socket and when its reply is parsed, with the
 *   job id read from the keys or elements it carries.
 * Times are µs of the machine's monotonic clock ({@link monoUs}), so stamps taken in different
 * processes compare.
 */
import { Redis } from 'iovalkey'
import pg from 'pg'
import type { Notice, Storage } from 'relayq'

/**
 * Microseconds of the monotonic clock (CLOCK_MONOTONIC): one clock for every process of the
 * machine, so stamps taken in the bench and in a consumer child can be subtracted.
 */
export function monoUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/** One stamp: point name, job id ('' when unknown), µs. */
export type TraceEvent = [point: string, id: string, us: number]

/** Stamps of one process, in the order taken. */
export class TraceLog {
  readonly events: TraceEvent[] = []

  mark (point: string, id: string, us = monoUs()): void {
    this.events.push([point, id, us])
  }
}

/** `storage` with every call the hot path makes stamped into `log`. */
export function traceStorage (storage: Storage, log: TraceLog): Storage {
  const hooks: Partial<Record<keyof Storage, unknown>> = {
    enqueue: async (queue: string, jobs: Parameters<Storage['enqueue']>[1]) => {
      for (const job of jobs) log.mark('enqueue called', job.id)
      const outcomes = await storage.enqueue(queue, jobs)
      const us = monoUs()
      for (const job of jobs) log.mark('enqueue answered', job.id, us)
      return outcomes
    },
    claim: async (...args: Parameters<Storage['claim']>) => {
      const jobs = await storage.claim(...args)
      const us = monoUs()
      for (const job of jobs) log.mark('claimed', job.id, us)
      return jobs
    },
    settle: async (...args: Parameters<Storage['settle']>) => {
      for (const s of args[2]) log.mark('settle called', s.id)
      const result = await storage.settle(...args)
      const us = monoUs()
      for (const s of args[2]) log.mark('settle answered', s.id, us)
      // A backend answers the jobs it claimed, or them with the refused settlements.
      for (const job of Array.isArray(result) ? result : result.jobs) log.mark('claimed', job.id, us)
      return result
    },
    subscribe: async (queue: string, listener: (notice: Notice) => void, type?: Notice['type']) => {
      return await storage.subscribe(queue, notice => {
        if (notice.type === 'done') log.mark('notice', notice.id)
        listener(notice)
      }, type)
    }
  }
  return new Proxy(storage, {
    get (target, prop) {
      if (Object.hasOwn(hooks, prop)) return hooks[prop as keyof Storage]
      // Read on the storage itself (getters too), and methods bound to it: they use private
      // fields, which a Proxy does not have.
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

interface RedisCommand {
  name: string
  args: unknown[]
  promise: Promise<unknown>
}

const text = (v: unknown): string => Buffer.isBuffer(v) ? v.toString() : String(v)

/** The job id inside a relayq element (see src/scripts/_lib.lua), or '' when `e` is not one. */
function elementId (e: unknown): string {
  if (!Buffer.isBuffer(e) || e.length < 37) return ''
  return e.subarray(37, 37 + e.readUInt32BE(33)).toString()
}

/** Ids of the `done:<id>` keys among `keys`. */
function doneIds (keys: unknown[]): string[] {
  const ids: string[] = []
  for (const key of keys) {
    const k = text(key)
    const at = k.indexOf('}:done:')
    if (at >= 0) ids.push(k.slice(at + 7))
  }
  return ids
}

/**
 * Which relayq script an EVALSHA runs, from the shape of its keys (see the headers of
 * src/scripts/*.lua), and the job ids it is about.
 */
function classify (args: unknown[]): { script: string, ids: string[] } | undefined {
  const numKeys = Number(args[1])
  const keys = args.slice(2, 2 + numKeys).map(text)
  const argv = args.slice(2 + numKeys)
  const is = (i: number, suffix: string): boolean => keys[i]?.endsWith(suffix) === true
  if (!is(0, ':ready') || !is(1, ':jobs')) return undefined
  if (numKeys === 6 && is(5, ':claiming')) {
    const elements = argv.slice(4).map(elementId).filter(id => id !== '')
    return elements.length > 0 ? { script: 'activation', ids: elements } : { script: 'claim', ids: [] }
  }
  if (is(4, ':waiters')) return { script: 'enqueue', ids: doneIds(keys.slice(5)) }
  if (is(5, ':waiters') && is(7, ':claiming') && numKeys >= 8) return { script: 'settle', ids: doneIds(keys.slice(8)) }
  return undefined
}

/**
 * Stamps relayq's commands on every iovalkey connection of this process into `log` until the
 * returned function is called: `<script> sent` / `<script> answered` per job id (scripts enqueue,
 * activation, settle), `woken` when a BLMOVE returns a job, `block sent` when one is written.
 */
export function traceRedisCommands (log: TraceLog): () => void {
  const proto = Redis.prototype as unknown as { sendCommand: (command: RedisCommand, stream?: unknown) => unknown }
  const original = proto.sendCommand
  proto.sendCommand = function (this: unknown, command: RedisCommand, stream?: unknown) {
    // Stamped before the write: the write wakes Redis, which may answer (and wake the other side)
    // before this process runs again on a busy machine.
    const name = command.name
    const found = name === 'evalsha' || name === 'eval' ? classify(command.args) : undefined
    const us = monoUs()
    if (name === 'blmove') log.mark('block sent', '', us)
    else if (found !== undefined) for (const id of found.ids) log.mark(`${found.script} sent`, id, us)
    const result = original.call(this, command, stream)
    if (name === 'blmove') {
      command.promise.then(element => { if (element !== null) log.mark('woken', elementId(element)) }, () => {})
    } else if (found !== undefined && found.ids.length > 0) {
      command.promise.then(() => {
        const done = monoUs()
        for (const id of found.ids) log.mark(`${found.script} answered`, id, done)
      }, () => {})
    }
    return result
  }
  return () => { proto.sendCommand = original }
}

/**
 * Stamps PgStorage's statements on every `pg` connection of this process into `log` until the
 * returned function is called: `enqueue sent` / `settle sent` per job id when the statement is
 * handed to the driver, and `woken` (no id: hops.ts gives it to the call it falls in) when a
 * wake-up notice arrives on a LISTEN connection.
 */
export function tracePgQueries (log: TraceLog): () => void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown, emit: (event: string | symbol, ...args: unknown[]) => boolean }
  const query = proto.query
  const emit = proto.emit
  const ownEmit = Object.hasOwn(proto, 'emit')
  proto.query = function (this: unknown, ...args: unknown[]) {
    const config = args[0] as { name?: string, values?: unknown[] } | undefined
    const name = typeof config === 'object' && config !== null ? config.name : undefined
    if (typeof name === 'string') {
      // relayq's statements are named relayq_<namespace>_<operation> (src/storage/pg/queries.ts).
      const ids = name.endsWith('_enqueue') ? config?.values?.[3] : name.endsWith('_settle') ? config?.values?.[4] : undefined
      if (Array.isArray(ids)) {
        const us = monoUs()
        const point = name.endsWith('_enqueue') ? 'enqueue sent' : 'settle sent'
        for (const id of ids) log.mark(point, text(id), us)
      }
    }
    return query.apply(this, args)
  }
  proto.emit = function (this: unknown, event: string | symbol, ...args: unknown[]) {
    if (event === 'notification' && (args[0] as { channel?: string })?.channel?.endsWith('_w') === true) log.mark('woken', '')
    return emit.call(this, event, ...args)
  }
  return () => {
    proto.query = query
    if (ownEmit) proto.emit = emit
    else delete (proto as { emit?: unknown }).emit
  }
}
