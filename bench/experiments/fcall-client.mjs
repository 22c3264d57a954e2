// Client CPU per FCALL by the ways iovalkey can send one: client.call('FCALL', ...), the generated
// client.fcall(...), and client.sendCommand(new Command('fcall', ...)) (what scripts.ts does);
// plus EVALSHA by a defineCommand script (the fallback path). A no-op function and script with 20
// keys and 10 arguments (as settle.lua), batches of 50 in flight, the ways interleaved per round.
// usage: node bench/experiments/fcall-client.mjs <redis url> <calls per way and round> <rounds>
import { Command, Redis } from 'iovalkey'
const [url, nS, roundsS] = process.argv.slice(2)
const n = Number(nS); const rounds = Number(roundsS)
const client = new Redis(url)
await client.call('FUNCTION', 'LOAD', 'REPLACE', "#!lua name=relayq_bench\nredis.register_function('relayq_bench_noop', function (keys, args) return 1 end)")
client.defineCommand('relayqBenchNoop', { lua: 'return 1' })
const keys = Array.from({ length: 20 }, (_, i) => `{q}:key${i}`)
const args = [Date.now(), 30000, 0, 'worker-1', 'reply:', '{q}:control', 1024, 0, 'id', 'x'.repeat(40)]
const ways = {
  call: () => client.call('FCALL', 'relayq_bench_noop', keys.length, ...keys, ...args),
  fcall: () => client.fcall('relayq_bench_noop', keys.length, ...keys, ...args),
  sendCommand: () => client.sendCommand(new Command('fcall', ['relayq_bench_noop', keys.length, ...keys, ...args], { replyEncoding: 'utf8' })),
  evalsha: () => client.relayqBenchNoop(keys.length, ...keys, ...args)
}
const cpu = Object.fromEntries(Object.keys(ways).map(w => [w, []]))
for (let r = 0; r < rounds; r++) {
  for (const [name, send] of Object.entries(ways)) {
    const c0 = process.cpuUsage()
    for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, send))
    const cu = process.cpuUsage(c0)
    cpu[name].push((cu.user + cu.system) / n)
  }
}
const median = xs => [...xs].sort((a, b) => a - b)[xs.length >> 1]
for (const [name, xs] of Object.entries(cpu)) {
  const ratios = xs.map((x, i) => x / cpu.evalsha[i])
  console.log(name.padEnd(12), 'µs CPU per call, median', median(xs).toFixed(2), 'range', Math.min(...xs).toFixed(2), '–', Math.max(...xs).toFixed(2),
    '| paired ratio to evalsha, median', median(ratios).toFixed(3), 'range', Math.min(...ratios).toFixed(2), '–', Math.max(...ratios).toFixed(2))
}
await client.call('FUNCTION', 'DELETE', 'relayq_bench')
client.disconnect()
