/**
 * A peer queue's consumer in its own process, forked by bench/peers/index.ts like relayq's
 * bench/consumer-child.ts (same IPC protocol, bench/child-server.ts): `init` loads the peer and
 * opens a session on the same store as the bench.
 */
import { serveConsumer } from '../child-server.ts'
import { PEERS } from './index.ts'
import type { PeerChildConfig } from './types.ts'

serveConsumer<PeerChildConfig>('bench/peers/consumer-child.ts', async ({ peer, env }) => {
  const found = PEERS.find(p => p.id === peer)
  if (found === undefined) throw new Error(`unknown peer ${peer}`)
  const session = (await found.load()).open(env)
  return {
    start: options => session.startConsumer(options, 'child'),
    close: () => session.close()
  }
})
