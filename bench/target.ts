/**
 * What the scenarios drive: one library (relayq or a peer queue) on one store. relayq's
 * {@link Backend} becomes a target through {@link relayqTarget}; each peer in bench/peers/ provides
 * its own, so every library runs the very same scenario code.
 */
import { Producer, Queue } from 'relayq'
import type { Api, Backend, ConsumerOptions, RunningConsumer } from './backends.ts'
import { traceStorage, type TraceLog } from './trace.ts'

/** The job payload of every scenario. */
export interface Payload { n: number, s: string }

/** One job of a bulk enqueue. */
export interface BulkItem { id: string, payload: Payload }

/** How a producer will be used: `rpc` producers wait for results, `enqueue` ones never do. */
export type ProducerMode = 'enqueue' | 'rpc'

/** The producer side of one queue, in the bench's process. */
export interface BenchProducer {
  /** Enqueues one job; rejects unless the library reports it queued. */
  enqueue (id: string, payload: Payload): Promise<void>
  /** Enqueues a chunk through the library's bulk API; `undefined` when the library has none. */
  readonly enqueueMany?: (jobs: BulkItem[]) => Promise<void>
  /** Request/response: enqueues a job and resolves with its handler's result. */
  call (id: string, payload: Payload, timeoutMs: number): Promise<unknown>
  /** Closes the producer and its connections. */
  close (): Promise<void>
}

/** One library on one store, as the scenarios see it. */
export interface BenchTarget {
  /** Display name, e.g. `relayq` or `BullMQ`. */
  readonly library: string
  /** Where the consumer runs: in this process (memory stores) or in a forked child. */
  readonly consumerWhere: 'in-process' | 'child'
  /** Opens a producer on `queue`; with `trace`, relayq stamps its storage calls there (peers ignore it). */
  openProducer (queue: string, mode: ProducerMode, trace?: TraceLog): Promise<BenchProducer>
  /** Starts a consumer on `queue`; resolves once it is started and claiming (timing has begun). */
  startConsumer (options: ConsumerOptions): Promise<RunningConsumer>
  /** Releases what the target holds (child processes, temp dirs, keys it created). */
  close (): Promise<void>
}

/**
 * relayq through a {@link Backend}: a {@link Producer} per queue and the backend's {@link Consumer}
 * (`api` 'producer'), or a {@link Queue} without handler as producer and one with the handler as
 * consumer (`api` 'queue').
 */
export function relayqTarget (backend: Backend, api: Api = 'producer'): BenchTarget {
  return {
    library: 'relayq',
    consumerWhere: backend.consumerWhere,
    async openProducer (queue, _mode, trace) {
      const storage = backend.createStorage()
      const config = { storage: trace === undefined ? storage : traceStorage(storage, trace), name: queue }
      const producer = api === 'queue' ? new Queue<Payload, unknown>(config) : new Producer<Payload, unknown>(config)
      await producer.start()
      return {
        async enqueue (id, payload) {
          const res = await producer.enqueue(id, payload)
          if (res.status !== 'queued') throw new Error(`job ${id}: expected queued, got ${res.status}`)
        },
        async enqueueMany (jobs) {
          const results = await producer.enqueueMany(jobs)
          const bad = results.findIndex(r => r.status !== 'queued')
          if (bad !== -1) throw new Error(`bulk enqueue: job ${jobs[bad].id} was ${results[bad].status}, not queued`)
        },
        call: (id, payload, timeout) => producer.enqueueAndWait(id, payload, { timeout }),
        close: () => producer.stop()
      }
    },
    startConsumer: options => backend.startConsumer({ ...options, api }),
    close: () => backend.close()
  }
}
