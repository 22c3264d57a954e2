/**
 * Does a full keyspace slow relayq's sequential rpc on Redis? Alternates, on a Redis server of
 * your own (it is filled and emptied: never point it at a shared one), rounds of sequential
 * `enqueueAndWait` calls against one consumer in its own process under three conditions:
 *   empty   nothing else in the server
 *   ttl     N extra keys, each with an expiry (like relayq's `done:` records after a big run)
 *   plain   N extra keys without expiry
 * and prints per condition the median over rounds of: the calls' p50 and mean, the server's
 * µs per EVALSHA (INFO commandstats) and its CPU µs per call (INFO cpu).
 *
 *   npx tsx bench/experiments/keyspace.ts --url redis://127.0.0.1:6391 [--keys 600000] [--rounds 5] [--calls 2000]
 */
import { parseArgs } from 'node:util'
import { Redis } from 'iovalkey'
import { closeConsumerPool, createBackend } from '../backends.ts'
import { serverStats } from '../redis-info.ts'
import { rpc } from '../scenarios.ts'
import { relayqTarget } from '../target.ts'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    keys: { type: 'string', default: '600000' },
    rounds: { type: 'string', default: '5' },
    calls: { type: 'string', default: '2000' }
  }
})
if (values.url === undefined) throw new Error('--url of a Redis server of your own is required (it is filled and flushed)')
const url = values.url
const keys = Number(values.keys)
const rounds = Number(values.rounds)
const calls = Number(values.calls)

const admin = new Redis(url)
const FILL = `for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  if ARGV[3] == '0' then redis.call('SET', 'fill:' .. i, ARGV[4]) else redis.call('SET', 'fill:' .. i, ARGV[4], 'PX', ARGV[3]) end
end`
/** Puts `n` keys of ~60 bytes, with a 1-hour expiry or none, in 50,000-key scripts. */
async function fill (n: number, ttl: boolean): Promise<void> {
  for (let from = 1; from <= n; from += 50_000) await admin.eval(FILL, 0, from, Math.min(n, from + 49_999), ttl ? 3_600_000 : 0, 'x'.repeat(60))
}

type Condition = 'empty' | 'ttl' | 'plain'
const results = new Map<Condition, Array<{ p50: number, mean: number, evalshaUs: number, serverCpuUs: number }>>()
for (let round = 1; round <= rounds; round++) {
  for (const condition of ['empty', 'ttl', 'plain'] as const) {
    await admin.flushall()
    if (condition !== 'empty') await fill(keys, condition === 'ttl')
    const target = relayqTarget(await createBackend('redis', { url }))
    const before = await serverStats(url)
    const r = await rpc(target, `ks-${round}-${condition}`, { warmup: 1000, sequential: calls, concurrent: 1 })
    const after = await serverStats(url)
    await target.close()
    const evalsha = (s: typeof before): { calls: number, usec: number } => s.commands.get('evalsha') ?? { calls: 0, usec: 0 }
    const list = results.get(condition) ?? []
    list.push({
      p50: r.sequential.p50Ms * 1000,
      mean: 1e6 / r.sequential.callsPerSec,
      evalshaUs: (evalsha(after).usec - evalsha(before).usec) / (evalsha(after).calls - evalsha(before).calls),
      serverCpuUs: (after.cpuUs - before.cpuUs) / (2 * 1000 + calls + 1)
    })
    results.set(condition, list)
    console.log(`round ${round} ${condition.padEnd(5)}: dbsize ${await admin.dbsize()}, p50 ${list[list.length - 1].p50.toFixed(0)} µs, µs/EVALSHA ${list[list.length - 1].evalshaUs.toFixed(1)}`)
  }
}
await admin.flushall()
admin.disconnect()
await closeConsumerPool()

const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1] }
console.log(`\n${calls} sequential calls per round, ${rounds} rounds, ${keys} extra keys; medians over rounds (µs)`)
console.log('| condition | call p50 | call mean | server µs per EVALSHA | server CPU µs per call |')
console.log('|---|---:|---:|---:|---:|')
for (const [condition, list] of results) {
  const m = (f: (x: typeof list[number]) => number): string => median(list.map(f)).toFixed(1)
  console.log(`| ${condition} | ${m(x => x.p50)} | ${m(x => x.mean)} | ${m(x => x.evalshaUs)} | ${m(x => x.serverCpuUs)} |`)
}
