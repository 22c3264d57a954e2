/** The queue gauges in the Prometheus text format (for `relayq metrics`, which needs no prom-client). */
import { METRICS, type MetricDefinition } from './definitions.ts'
import type { QueueSnapshot } from './gauges.ts'

function escape (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function family (definition: MetricDefinition, samples: ReadonlyArray<[Record<string, string>, number]>): string {
  const lines = [`# HELP ${definition.name} ${definition.help}`, `# TYPE ${definition.name} ${definition.type}`]
  for (const [labels, value] of samples) {
    const text = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`).join(',')
    lines.push(`${definition.name}{${text}} ${value}`)
  }
  return lines.join('\n')
}

/** The gauges and stored totals of `snapshots` as one scrape. */
export function exposition (snapshots: readonly QueueSnapshot[]): string {
  return [
    family(METRICS.queueJobs, snapshots.flatMap(s => Object.entries(s.counts).map(([state, n]): [Record<string, string>, number] => [{ queue: s.queue, state }, n]))),
    family(METRICS.oldest, snapshots.map(s => [{ queue: s.queue }, s.oldestAge])),
    family(METRICS.paused, snapshots.map(s => [{ queue: s.queue }, s.paused ? 1 : 0])),
    family(METRICS.totals, snapshots.flatMap(s => Object.entries(s.totals).map(([event, n]): [Record<string, string>, number] => [{ queue: s.queue, event }, n])))
  ].join('\n') + '\n'
}
