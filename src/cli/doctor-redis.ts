/**
 * Redis checks of `relayq doctor`, on a connection of their own: version, role, eviction policy,
 * persistence, memory headroom, cluster slot coverage and the clock skew against `TIME`.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'iovalkey'
import { span } from './output.ts'
import type { DoctorOptions, Finding } from './doctor.ts'

type Client = Redis | Cluster

/** Runs the checks against the server (every master of a cluster). */
export async function diagnoseRedis (url: URL, cluster: readonly string[] | undefined, options: RedisOptions, clusterOptions: ClusterOptions, doctor: DoctorOptions): Promise<Finding[]> {
  const client: Client = cluster === undefined
    ? new Redis(url.href, { ...options, lazyConnect: true })
    : new Cluster([...cluster], { ...clusterOptions, lazyConnect: true })
  client.on('error', () => {})
  try {
    await client.connect()
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client]
    const findings: Finding[] = []
    for (const node of nodes) findings.push(...await checkNode(node, nodes.length > 1 ? `${node.options.host}:${node.options.port}` : ''))
    if (client instanceof Cluster) findings.push(await checkSlots(nodes))
    findings.push(await checkClock(nodes[0], doctor.maxClockSkew))
    return findings
  } finally {
    client.disconnect()
  }
}

/** INFO as a map of field → value. */
function parseInfo (text: string): Map<string, string> {
  const info = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) info.set(line.slice(0, at), line.slice(at + 1).trim())
  }
  return info
}

async function config (node: Redis, name: string): Promise<string | undefined> {
  try {
    const reply = await node.call('CONFIG', 'GET', name) as string[]
    return reply[1]
  } catch {
    return undefined // CONFIG renamed or denied (managed services): said below
  }
}

async function checkNode (node: Redis, where: string): Promise<Finding[]> {
  const on = where === '' ? '' : ` on ${where}`
  const info = parseInfo(await node.info())
  const findings: Finding[] = []
  const version = info.get('valkey_version') ?? info.get('redis_version') ?? 'unknown'
  const server = info.has('valkey_version') ? 'Valkey' : 'Redis'
  const [major, minor] = version.split('.').map(Number)
  findings.push(major > 6 || (major === 6 && minor >= 2)
    ? { check: 'version', status: 'ok', message: `${server} ${version}${on}` }
    : { check: 'version', status: 'problem', message: `${server} ${version}${on}: relayq needs 6.2 or later (BLMOVE)`, fix: 'upgrade the server to Redis 7 or Valkey 7+' })
  if (info.get('role') === 'slave') {
    findings.push({ check: 'role', status: 'problem', message: `connected to a replica${on}: it refuses writes`, fix: 'point --url at the primary' })
  }

  const policy = await config(node, 'maxmemory-policy')
  if (policy === undefined) {
    findings.push({ check: 'eviction', status: 'warn', message: `cannot read maxmemory-policy${on} (CONFIG is disabled)`, fix: 'check with your provider that maxmemory-policy is noeviction' })
  } else if (policy !== 'noeviction') {
    findings.push({
      check: 'eviction',
      status: 'problem',
      message: `maxmemory-policy is ${policy}${on}: under memory pressure Redis deletes keys, jobs included`,
      fix: 'CONFIG SET maxmemory-policy noeviction (and in redis.conf); size maxmemory for your backlog'
    })
  } else {
    findings.push({ check: 'eviction', status: 'ok', message: `maxmemory-policy noeviction${on}` })
  }
  const max = Number(info.get('maxmemory') ?? 0)
  const used = Number(info.get('used_memory') ?? 0)
  if (max > 0 && used / max > 0.9) {
    findings.push({ check: 'memory', status: 'warn', message: `memory ${Math.round(100 * used / max)}% of maxmemory${on}: enqueues fail when it is full`, fix: 'raise maxmemory, or lower retention (Admin.setRetention)' })
  }

  const aof = info.get('aof_enabled') === '1'
  const save = await config(node, 'save')
  if (!aof) {
    if (save === '' || (save === undefined && info.get('rdb_last_save_time') === undefined)) {
      findings.push({ check: 'persistence', status: 'problem', message: `persistence is off${on}: a restart loses every job`, fix: 'CONFIG SET appendonly yes (and appendonly yes in redis.conf)' })
    } else {
      findings.push({ check: 'persistence', status: 'warn', message: `RDB snapshots only${on}: a crash loses the jobs since the last snapshot`, fix: 'CONFIG SET appendonly yes (appendfsync everysec)' })
    }
  } else {
    const fsync = await config(node, 'appendfsync')
    if (fsync === 'no') {
      findings.push({ check: 'persistence', status: 'warn', message: `AOF on with appendfsync no${on}: the OS flushes when it likes (about 30 s may be lost on a power loss)`, fix: 'CONFIG SET appendfsync everysec (or always)' })
    } else {
      findings.push({ check: 'persistence', status: 'ok', message: `AOF on, appendfsync ${fsync ?? 'unknown'}${on}${fsync === 'everysec' ? ' (up to 1 s lost on a power loss)' : ''}` })
    }
  }
  return findings
}

/** Slot coverage as every master sees it (the worst view wins: a master that lost slots knows first). */
async function checkSlots (nodes: readonly Redis[]): Promise<Finding> {
  let assigned = 16384
  let failing = 0
  let state = 'ok'
  for (const node of nodes) {
    const info = parseInfo(await node.call('CLUSTER', 'INFO') as string)
    assigned = Math.min(assigned, Number(info.get('cluster_slots_assigned') ?? 0))
    failing = Math.max(failing, Number(info.get('cluster_slots_fail') ?? 0))
    if (info.get('cluster_state') !== 'ok') state = info.get('cluster_state') ?? 'unknown'
  }
  if (assigned < 16384 || failing > 0 || state !== 'ok') {
    return {
      check: 'cluster',
      status: 'problem',
      message: `cluster state ${state}: ${16384 - assigned} slot(s) unassigned, ${failing} failing: queues hashing there cannot be used`,
      fix: 'redis-cli --cluster fix <node> (assign the slots), then check every master is up'
    }
  }
  return { check: 'cluster', status: 'ok', message: `every one of the 16384 slots is served (${nodes.length} masters)` }
}

/** This host's clock against the server's TIME (half the round trip is the uncertainty). */
async function checkClock (node: Redis, max: number): Promise<Finding> {
  const before = Date.now()
  const [seconds, micros] = await node.call('TIME') as [string, string]
  const after = Date.now()
  const server = Number(seconds) * 1000 + Number(micros) / 1000
  const skew = (before + after) / 2 - server
  const slack = (after - before) / 2
  if (Math.abs(skew) - slack > max) {
    return {
      check: 'clock',
      status: 'problem',
      message: `this host's clock is ${span(Math.abs(skew))} ${skew > 0 ? 'ahead of' : 'behind'} the server's: leases, delays and retention are timed by each client's clock`,
      fix: 'synchronize the clocks of every host (NTP: chrony or systemd-timesyncd)'
    }
  }
  return { check: 'clock', status: 'ok', message: `clock skew ${Math.round(Math.abs(skew))} ms against the server (±${Math.ceil(slack)} ms)` }
}
