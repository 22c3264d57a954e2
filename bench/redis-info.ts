/** What a Redis server reports about itself (INFO), for the bench's server-side figures. */
import { Redis } from 'iovalkey'

export interface ServerStats {
  /** Per command: calls and µs spent (INFO commandstats; commands run by scripts included). */
  readonly commands: Map<string, { calls: number, usec: number }>
  /** CPU time of the server process, user + system, µs (INFO cpu). */
  readonly cpuUs: number
}

/** Reads the server's command stats and CPU time; whole server, so other clients' work counts too. */
export async function serverStats (url: string): Promise<ServerStats> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const info = await client.info('commandstats')
    const commands = new Map<string, { calls: number, usec: number }>()
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) })
    const cpu = await client.info('cpu')
    const seconds = (name: string): number => Number(cpu.match(new RegExp(`^${name}:([\\d.]+)`, 'm'))?.[1] ?? 0)
    return { commands, cpuUs: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6 }
  } finally {
    client.disconnect()
  }
}
