// Paired A/B runs of one experiment script over several builds: each round runs every build once,
// in an order rotating from round to round, each in a fresh process; prints per field the median
// of each build's values and of its per-round ratios to the first build's, with their range.
// usage: node bench/experiments/ab-paired.mjs <rounds> <field,field,...> <script> [node flags --] <dist> [<dist>...] [-- script args]
//   fields are paths into the script's JSON output (e.g. completedBytesPerJob, cold.cpu, medCpu);
//   the script is run as `node [flags] <script> <dist> <script args>`.
// e.g. node bench/experiments/ab-paired.mjs 7 cold.cpu,medCpu bench/experiments/ab-drain.mjs /a/dist /b/dist -- memory 20000 4
import { execFileSync } from 'node:child_process'
const [roundsS, fieldsS, script, ...rest] = process.argv.slice(2)
const rounds = Number(roundsS); const fields = fieldsS.split(',')
const sep = rest.indexOf('--')
const dists = sep < 0 ? rest : rest.slice(0, sep)
const args = sep < 0 ? [] : rest.slice(sep + 1)
const flags = (process.env.AB_NODE_FLAGS ?? '').split(' ').filter(Boolean)
const get = (o, path) => path.split('.').reduce((v, k) => v?.[k], o)
const values = dists.map(() => fields.map(() => []))
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < dists.length; k++) {
    const i = (r + k) % dists.length
    const out = execFileSync(process.execPath, [...flags, script, dists[i], ...args], { encoding: 'utf8' })
    const json = JSON.parse(out.trim().split('\n').pop())
    fields.forEach((f, j) => values[i][j].push(get(json, f)))
  }
}
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const fmt = x => +x.toFixed(3)
for (const [j, f] of fields.entries()) {
  console.log(f)
  for (const [i, d] of dists.entries()) {
    const ratios = values[i][j].map((v, r) => v / values[0][j][r])
    console.log(`  ${d}: median ${fmt(median(values[i][j]))} [${fmt(Math.min(...values[i][j]))}–${fmt(Math.max(...values[i][j]))}]` +
      (i === 0 ? '' : `  ÷ first: ${fmt(median(ratios))} [${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}]`))
  }
}
