/**
 * The console report of `--compare`: per scenario, a table with a row per library, then relayq's
 * ratio against each peer. Throughput-type metrics: relayq / peer (above 1: relayq is faster);
 * latency and CPU per job: peer / relayq (above 1: relayq is lower). The ratios also go to the JSON.
 */
import type { LibraryRun } from './compare.ts'
import { fmt, ratio, table } from './format.ts'
import type { RpcResult, ThroughputResult } from './scenarios.ts'

/** relayq against one peer, metric by metric (undefined: one side did not run it). */
export interface PeerRatios {
  readonly peer: string
  readonly throughput: Array<{ relayqJobs: number, peerJobs: number, enqueue?: number, bulkEnqueue?: number, processing?: number, cpuPerJob?: number }>
  readonly rpc?: { sequentialP50?: number, sequentialCallsPerSec?: number, concurrentCallsPerSec?: number, concurrentP50?: number, cpuPerCall?: number }
}

const na = 'n/a'
const num = (v: number | null | undefined, digits = 0): string => v === null || v === undefined ? na : fmt(v, digits)
const div = (a: number | null | undefined, b: number | null | undefined): number | undefined =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? undefined : a / b
const failed = (run: LibraryRun, scenario: 'throughput' | 'rpc'): boolean => run.errors.some(e => e.scenario === scenario)
const showRatio = (r: number | undefined): string => r === undefined ? na : ratio(r)

function name (run: LibraryRun): string {
  return run.version === undefined ? run.library : `${run.library} ${run.version}`
}

/** `a; b; a` → `2 × a; b`. */
function summarize (lines: string[]): string {
  const counts = new Map<string, number>()
  for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1)
  return [...counts].map(([line, n]) => n === 1 ? line : `${n} × ${line}`).join('; ')
}

/** Computes relayq's ratios against every peer that ran. */
export function computeRatios (runs: LibraryRun[]): PeerRatios[] {
  const [relayq, ...peers] = runs
  if (relayq.status !== 'ok') return []
  return peers.filter(p => p.status === 'ok').map(peer => {
    const ours = relayq.results.throughput ?? []
    const theirs = peer.results.throughput ?? []
    const throughput = theirs.map((t, i) => {
      const o: ThroughputResult | undefined = ours[Math.min(i, ours.length - 1)]
      return {
        relayqJobs: o?.jobs ?? 0,
        peerJobs: t.jobs,
        enqueue: div(o?.enqueuePerSec, t.enqueuePerSec),
        bulkEnqueue: div(o?.bulkEnqueuePerSec, t.bulkEnqueuePerSec),
        processing: div(o?.processPerSec, t.processPerSec),
        cpuPerJob: div(t.consumerCpuUsPerJob, o?.consumerCpuUsPerJob)
      }
    })
    const o: RpcResult | undefined = relayq.results.rpc
    const t = peer.results.rpc
    const rpc = t === undefined
      ? undefined
      : {
          sequentialP50: div(t.sequential.p50Ms, o?.sequential.p50Ms),
          sequentialCallsPerSec: div(o?.sequential.callsPerSec, t.sequential.callsPerSec),
          concurrentCallsPerSec: div(o?.concurrent.callsPerSec, t.concurrent.callsPerSec),
          concurrentP50: div(t.concurrent.p50Ms, o?.concurrent.p50Ms),
          cpuPerCall: div(t.consumerCpuUsPerCall, o?.consumerCpuUsPerCall)
        }
    return { peer: peer.library, throughput, rpc }
  })
}

/** Prints the comparison tables and returns the ratios. */
export function printCompare (backend: string, runs: LibraryRun[]): PeerRatios[] {
  const ratios = computeRatios(runs)
  const cpuHeader = `consumer CPU µs/job${backend === 'memory' ? ' (process)' : ''}`
  const missing = runs.filter(r => r.status !== 'ok').map(r => `${r.library}: ${r.note ?? r.status}`)

  if (runs.some(r => r.results.throughput !== undefined || failed(r, 'throughput'))) {
    const rows: string[][] = []
    const sizes = Math.max(...runs.map(r => r.results.throughput?.length ?? 0))
    for (let i = 0; i < sizes; i++) {
      for (const run of runs) {
        const list = run.results.throughput
        const t = list?.[i]
        if (t === undefined) {
          // relayq always has a row (n/a when its backend is missing); a peer that did not run has a note below.
          if (i === 0 && run.library === 'relayq' && run.status !== 'ok') rows.push([name(run), na, na, na, na, na])
          if (i === 0 && failed(run, 'throughput')) rows.push([name(run), 'FAILED', '', '', '', ''])
          continue
        }
        rows.push([name(run), `${fmt(t.jobs)}`, fmt(t.enqueuePerSec), num(t.bulkEnqueuePerSec), fmt(t.processPerSec), fmt(t.consumerCpuUsPerJob, 2)])
      }
    }
    console.log(table(['throughput', 'jobs', 'enqueue jobs/s (50 in flight)', 'bulk enqueue jobs/s (1,000/chunk)', 'processing jobs/s (c=50)', cpuHeader], rows))
    console.log()
    const ratioRows = ratios.flatMap(r => r.throughput.map(t => [
      `relayq / ${r.peer}${t.relayqJobs === t.peerJobs ? '' : ` (${fmt(t.relayqJobs)} vs ${fmt(t.peerJobs)} jobs)`}`,
      fmt(t.peerJobs), showRatio(t.enqueue), showRatio(t.bulkEnqueue), showRatio(t.processing), showRatio(t.cpuPerJob)
    ]))
    if (ratioRows.length > 0) {
      console.log(table(['relayq vs peer (throughput)', 'jobs', 'enqueue ×', 'bulk enqueue ×', 'processing ×', 'less CPU per job ×'], ratioRows))
      console.log()
    }
  }

  if (runs.some(r => r.results.rpc !== undefined || failed(r, 'rpc'))) {
    const rows = runs.filter(r => r.results.rpc !== undefined || r.library === 'relayq' || failed(r, 'rpc')).map(run => {
      const p = run.results.rpc
      if (p === undefined) return failed(run, 'rpc') ? [name(run), 'FAILED', '', '', '', '', '', '', ''] : [name(run), na, na, na, na, na, na, na, na]
      return [
        name(run), fmt(p.sequential.calls), num(p.sequential.p50Ms, 3), num(p.sequential.p99Ms, 3), fmt(p.sequential.callsPerSec),
        fmt(p.concurrent.callsPerSec), num(p.concurrent.p50Ms, 3), num(p.concurrent.p99Ms, 3), fmt(p.consumerCpuUsPerCall, 2)
      ]
    })
    console.log(table(['rpc', 'sequential calls', 'seq p50 ms', 'seq p99 ms', 'seq calls/s', '50 in flight calls/s', 'p50 ms', 'p99 ms', 'consumer CPU µs/call'], rows))
    console.log()
    const ratioRows = ratios.filter(r => r.rpc !== undefined).map(r => [
      `relayq / ${r.peer}`, showRatio(r.rpc?.sequentialP50), showRatio(r.rpc?.sequentialCallsPerSec),
      showRatio(r.rpc?.concurrentCallsPerSec), showRatio(r.rpc?.concurrentP50), showRatio(r.rpc?.cpuPerCall)
    ])
    if (ratioRows.length > 0) {
      console.log(table(['relayq vs peer (rpc)', 'seq p50: peer / relayq', 'seq calls/s ×', '50 in flight calls/s ×', 'p50 (50 in flight): peer / relayq', 'less CPU per call ×'], ratioRows))
      console.log()
    }
  }

  if (runs[0].status !== 'ok') console.log('No ratios: relayq did not run.\n')
  console.log('Settings:')
  for (const run of runs) {
    if (run.status === 'unsupported') continue
    const capped = run.limits === undefined ? '' : ` [capped here: ${fmt(run.limits.jobs)} jobs per throughput run, rpc ${fmt(run.limits.rpc.warmup)}+${fmt(run.limits.rpc.warmup)} warm-up, ${fmt(run.limits.rpc.sequential)} sequential, ${fmt(run.limits.rpc.concurrent)} with 50 in flight]`
    console.log(`- ${run.library}${capped}:`)
    for (const line of run.settings) console.log(`    ${line}`)
    if (run.cleanup.length > 0) console.log(`    cleanup: ${summarize(run.cleanup)}`)
  }
  if (missing.length > 0) console.log(`Not run: ${missing.join('; ')}`)
  for (const run of runs) {
    for (const e of run.errors) console.log(`FAILED: ${run.library} ${e.scenario}: ${e.message}`)
  }
  console.log()
  return ratios
}
