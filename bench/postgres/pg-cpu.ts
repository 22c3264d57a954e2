/** The CPU time of a PostgreSQL cluster the bench started, read from /proc. */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { PgCluster } from '../../test/fixtures/pg-server.ts'

/** CPU time (µs, user + system) of every process of the cluster: the postmaster, its children, and the backends that exited. */
export function pgCpu (cluster: PgCluster): number {
  const postmaster = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')
      const pid = Number(entry)
      if (pid === postmaster || Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12])
      // A backend that exited (a closed connection) left its CPU time to the postmaster's children's.
      if (pid === postmaster) ticks += Number(fields[13]) + Number(fields[14])
    } catch {}
  }
  return ticks * 10_000 // 100 ticks per second
}
