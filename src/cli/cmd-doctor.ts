/** `relayq doctor` and `relayq metrics`. */
import { QueueGauges } from '../metrics/gauges.ts'
import { exposition } from '../metrics/exposition.ts'
import type { Context } from './commands.ts'
import { diagnoseQueues, type DoctorOptions, type Finding } from './doctor.ts'

const MARK: Record<Finding['status'], string> = { ok: 'ok', info: 'info', warn: 'WARN', problem: 'PROBLEM' }

export async function doctor (ctx: Context): Promise<number | undefined> {
  const connection = await ctx.connection()
  const admin = await ctx.admin()
  const options: DoctorOptions = { maxClockSkew: ctx.flags['max-clock-skew'] as number, leaseScan: 10_000, now: Date.now }
  const findings: Finding[] = [{ check: 'connect', status: 'ok', message: `connected to ${connection.label}` }]
  if (connection.diagnose !== undefined) findings.push(...await connection.diagnose(options))
  findings.push(...await diagnoseQueues(admin, options))
  const bad = findings.filter(f => f.status === 'problem' || (ctx.flags.strict === true && f.status === 'warn'))
  const out = ctx.out
  out.value({ ok: bad.length === 0, findings }, () => {
    for (const f of findings) {
      const color = f.status === 'problem' ? 'red' : f.status === 'warn' ? 'yellow' : f.status === 'ok' ? 'green' : 'dim'
      out.line(`${out.paint(MARK[f.status].padEnd(7), color)}  ${f.check.padEnd(11)}  ${f.message}`)
      if (f.fix !== undefined) out.line(`${' '.repeat(22)}→ ${f.fix}`)
    }
    out.line()
    out.line(bad.length === 0 ? 'No problem found.' : `${bad.length} problem(s) found.`)
  })
  return bad.length === 0 ? 0 : 3
}

export async function metrics (ctx: Context): Promise<number | undefined> {
  const admin = await ctx.admin()
  const gauges = new QueueGauges(admin, { queues: ctx.args.length > 0 ? ctx.args : undefined, interval: 0 })
  ctx.out.line(exposition(await gauges.read()).trimEnd())
  return undefined
}
