/**
 * The console report of a bench run: per mode, one table with a row per metric and a column per
 * library (median of the runs, with the range when there are several), then relayq's ratios
 * against each peer (above 1: relayq is better, whichever way the metric points), then the hops
 * of a sequential call. The summary and ratios also go to the JSON.
 */
import { fmt, ratio, table } from './format.ts'
import type { HopsResult } from './hops.ts'
import type { Cell, Variant } from './matrix.ts'
import type { Mode, SuiteResults } from './suite.ts'

interface Metric {
  readonly key: string
  readonly label: string
  /** Which way is better; undefined: no ratio (informational). */
  readonly better?: 'higher' | 'lower'
  readonly digits: number
  readonly get: (r: SuiteResults) => number | null | undefined
}

/** Median and range of one metric over the runs. */
export interface Summary { median: number, min: number, max: number, n: number }

/** relayq variant / peer, per mode and metric (oriented: above 1, relayq is better). */
export interface Ratio { mode: Mode, relayq: string, peer: string, metric: string, ratio: number }

function metricsOf (sizes: readonly number[], rpcAfter: number): Metric[] {
  const list: Metric[] = []
  sizes.forEach((size, i) => {
    const t = (r: SuiteResults): NonNullable<SuiteResults['throughput']>[number] | undefined => r.throughput?.[i]
    const at = `${fmt(size)} jobs`
    list.push(
      { key: `processPerSec@${size}`, label: `processing jobs/s (c=50), ${at}`, better: 'higher', digits: 0, get: r => t(r)?.processPerSec },
      { key: `cpuPerJob@${size}`, label: `consumer CPU µs/job, ${at}`, better: 'lower', digits: 1, get: r => t(r)?.consumerCpuUsPerJob },
      { key: `busy@${size}`, label: `consumer CPU busy % of a core, ${at}`, digits: 0, get: r => t(r)?.consumerBusyPct },
      { key: `serverCpuPerJob@${size}`, label: `Redis CPU µs/job, ${at}`, better: 'lower', digits: 1, get: r => t(r)?.serverCpuUsPerJob },
      { key: `serverBusy@${size}`, label: `Redis CPU busy % of a core, ${at}`, digits: 0, get: r => t(r)?.serverBusyPct },
      { key: `enqueuePerSec@${size}`, label: `enqueue jobs/s (50 in flight), ${at}`, better: 'higher', digits: 0, get: r => t(r)?.enqueuePerSec },
      { key: `bulkPerSec@${size}`, label: `bulk enqueue jobs/s (1,000/chunk), ${at}`, better: 'higher', digits: 0, get: r => t(r)?.bulkEnqueuePerSec }
    )
  })
  const rpc = (name: 'rpc' | 'rpcAfter', label: string): void => {
    list.push(
      { key: `${name}.seqP50`, label: `${label} sequential p50 ms`, better: 'lower', digits: 3, get: r => r[name]?.sequential.p50Ms },
      { key: `${name}.seqP99`, label: `${label} sequential p99 ms`, better: 'lower', digits: 3, get: r => r[name]?.sequential.p99Ms },
      { key: `${name}.seqPerSec`, label: `${label} sequential calls/s`, better: 'higher', digits: 0, get: r => r[name]?.sequential.callsPerSec },
      { key: `${name}.conPerSec`, label: `${label} 50 in flight calls/s`, better: 'higher', digits: 0, get: r => r[name]?.concurrent.callsPerSec },
      { key: `${name}.conP50`, label: `${label} 50 in flight p50 ms`, better: 'lower', digits: 3, get: r => r[name]?.concurrent.p50Ms },
      { key: `${name}.cpuPerCall`, label: `${label} consumer CPU µs/call`, better: 'lower', digits: 1, get: r => r[name]?.consumerCpuUsPerCall }
    )
  }
  rpc('rpc', 'rpc')
  if (rpcAfter > 0) rpc('rpcAfter', `rpc after ${fmt(rpcAfter)} jobs,`)
  return list
}

function summarize (values: number[]): Summary | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length }
}

const show = (s: Summary | undefined, digits: number): string =>
  s === undefined ? 'n/a' : s.n === 1 ? fmt(s.median, digits) : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`

/** `a; b; a` → `2 × a; b`. */
function countLines (lines: string[]): string {
  const counts = new Map<string, number>()
  for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1)
  return [...counts].map(([line, n]) => n === 1 ? line : `${n} × ${line}`).join('; ')
}

/** Prints the hops of one library (the run with the median total when there are several). */
export function printHops (label: string, mode: Mode, runs: HopsResult[]): void {
  const sorted = [...runs].sort((a, b) => a.totalUs.p50 - b.totalUs.p50)
  const h = sorted[(sorted.length - 1) >> 1]
  const us = (v: number): string => Number.isNaN(v) ? 'n/a' : fmt(v, 1)
  const windows = h.windows.map(([first, last]) => `p50 calls ${fmt(first)}–${fmt(last)}`)
  console.log(`${label}, ${mode}: ${fmt(h.calls)} sequential calls${runs.length > 1 ? ` (the run with the median p50 of ${runs.length})` : ''}; µs${h.skipped > 0 ? `; ${h.skipped} calls with a missing or out-of-order point left out` : ''}`)
  const rows = h.hops.map(hop => [
    `${hop.from} → ${hop.to}`, us(hop.us.p50), us(hop.us.p90), us(hop.us.p99), us(hop.us.mean),
    `${fmt(100 * hop.us.mean / h.totalUs.mean, 0)} %`, ...hop.windowP50.map(us)
  ])
  rows.push(['call (total)', us(h.totalUs.p50), us(h.totalUs.p90), us(h.totalUs.p99), us(h.totalUs.mean), '100 %', ...h.totalWindowP50.map(us)])
  console.log(table(['hop', 'p50', 'p90', 'p99', 'mean', 'share of mean', ...windows], rows))
  if (h.aside.length > 0) {
    console.log()
    console.log(table(['beside the path', 'p50', 'p90', 'p99', 'mean', 'calls'], h.aside.map(a => [a.name, us(a.us.p50), us(a.us.p90), us(a.us.p99), us(a.us.mean), fmt(a.calls)])))
  }
  const { producer, consumer, redis } = h.cpuPerCall
  console.log(`CPU per call: bench process (producer) ${fmt(producer, 1)} µs, consumer process ${fmt(consumer, 1)} µs${redis === undefined ? '' : `, Redis ${fmt(redis, 1)} µs (whole server)`}${h.cpuPerCall.consumer === h.cpuPerCall.producer ? ' (one process)' : ''}`)
  if (h.server !== undefined && h.server.length > 0) {
    console.log()
    console.log(table(['Redis server during the calls (INFO commandstats)', 'calls', 'µs per call'], h.server.slice(0, 12).map(s => [s.command, fmt(s.calls), fmt(s.usecPerCall, 2)])))
  }
  console.log()
}

/** Prints the report; returns the summary and ratios for the JSON. */
export function printReport (variants: Variant[], cells: Cell[], options: { modes: readonly Mode[], sizes: readonly number[], rpcAfter: number, runs: number }): { summary: Record<string, Record<string, Record<string, Summary>>>, ratios: Ratio[] } {
  const ran = variants.filter(v => v.status === 'ok')
  const metrics = metricsOf(options.sizes, options.rpcAfter)
  const summary: Record<string, Record<string, Record<string, Summary>>> = {}
  const ratios: Ratio[] = []
  const relayqs = ran.filter(v => v.packageName === 'relayq')
  const peers = ran.filter(v => v.packageName !== 'relayq')

  for (const mode of options.modes) {
    summary[mode] = {}
    for (const v of ran) {
      const mine = cells.filter(c => c.variant === v.id && c.mode === mode)
      const s: Record<string, Summary> = {}
      for (const m of metrics) {
        const got = summarize(mine.map(c => m.get(c.results)).filter((x): x is number => typeof x === 'number' && Number.isFinite(x)))
        if (got !== undefined) s[m.key] = got
      }
      summary[mode][v.id] = s
    }
    const rows = metrics.filter(m => ran.some(v => summary[mode][v.id][m.key] !== undefined))
      .map(m => [m.label, ...ran.map(v => show(summary[mode][v.id][m.key], m.digits))])
    if (rows.length > 0) {
      const what = mode === 'warm' ? 'consumer warmed by a round first' : 'consumer in a fresh process per phase'
      console.log(table([`${mode}: ${what}${options.runs > 1 ? `; median (min–max) of ${options.runs} runs` : ''}`, ...ran.map(v => v.label)], rows))
      console.log()
    }
    const columns: string[] = []
    const ratioRows = new Map<string, string[]>()
    for (const r of relayqs) {
      for (const p of peers) {
        columns.push(`${r.label} vs ${p.label}`)
        for (const m of metrics) {
          if (m.better === undefined) continue
          const a = summary[mode][r.id][m.key]?.median
          const b = summary[mode][p.id][m.key]?.median
          const x = a === undefined || b === undefined || a === 0 || b === 0 ? undefined : m.better === 'higher' ? a / b : b / a
          if (x !== undefined) ratios.push({ mode, relayq: r.id, peer: p.id, metric: m.key, ratio: x })
          const row = ratioRows.get(m.label) ?? []
          row.push(x === undefined ? 'n/a' : ratio(x))
          ratioRows.set(m.label, row)
        }
      }
    }
    const shown = [...ratioRows].filter(([, row]) => row.some(x => x !== 'n/a'))
    if (columns.length > 0 && shown.length > 0) {
      console.log(table([`${mode}: relayq's lead (medians; above 1 = relayq better)`, ...columns], shown.map(([label, row]) => [label, ...row])))
      console.log()
    }
    for (const v of ran) {
      const hops = cells.filter(c => c.variant === v.id && c.mode === mode).map(c => c.results.hops).filter(h => h !== undefined)
      if (hops.length > 0) printHops(v.label, mode, hops)
    }
  }

  console.log('Settings:')
  for (const v of variants) {
    if (v.status !== 'ok') continue
    const capped = v.limits === undefined ? '' : ` [capped here: ${fmt(v.limits.jobs)} jobs per throughput run, rpc ${fmt(v.limits.rpc.warmup)}+${fmt(v.limits.rpc.warmup)} warm-up, ${fmt(v.limits.rpc.sequential)} sequential, ${fmt(v.limits.rpc.concurrent)} with 50 in flight]`
    console.log(`- ${v.label}${capped}:`)
    for (const line of v.settings) console.log(`    ${line}`)
    if (v.cleanup.length > 0) console.log(`    cleanup: ${countLines(v.cleanup)}`)
  }
  const missing = variants.filter(v => v.status !== 'ok').map(v => `${v.label}: ${v.note ?? v.status}`)
  if (missing.length > 0) console.log(`Not run: ${missing.join('; ')}`)
  for (const c of cells) {
    for (const e of c.errors) console.log(`FAILED: ${variants.find(v => v.id === c.variant)?.label ?? c.variant} (${c.mode}, run ${c.run}) ${e.part}: ${e.message}`)
  }
  console.log()
  return { summary, ratios }
}
