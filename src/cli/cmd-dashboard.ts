/**
 * `relayq dashboard`: the web dashboard as a standalone server over the storage the URL names.
 * It binds to 127.0.0.1 by default; `--user`/`--password` add HTTP Basic authentication, and
 * `--read-only` hides every action (the server refuses writes).
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Context } from './commands.ts'
import { UsageError } from './flags.ts'

export async function dashboard (ctx: Context): Promise<number | undefined> {
  const { host, port, user, password } = ctx.flags as { host: string, port: number, user?: string, password?: string }
  const readOnly = ctx.flags['read-only'] === true
  if ((user === undefined) !== (password === undefined)) throw new UsageError('dashboard: --user and --password go together')
  if (user === '' || password === '') throw new UsageError('dashboard: --user and --password must not be empty')
  const [{ createDashboard, basicAuth }, admin, connection] = await Promise.all([import('../dashboard/index.ts'), ctx.admin(), ctx.connection()])
  const handler = createDashboard({ admin, readOnly, ...(ctx.flags['base-path'] !== undefined && { basePath: ctx.flags['base-path'] as string }) })
  const allowed = user === undefined ? undefined : basicAuth(user, password as string)
  const server = createServer((req, res) => {
    if (allowed !== undefined && !allowed(req)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="relayq", charset="UTF-8"', 'Content-Type': 'text/plain; charset=utf-8' })
      res.end('Authentication required\n')
      return
    }
    handler(req, res)
  })
  server.listen(port, host)
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
  const address = server.address() as { port: number }
  const shown = host.includes(':') ? `[${host}]` : host
  ctx.out.line(`relayq dashboard on http://${shown}:${address.port}${(ctx.flags['base-path'] as string | undefined) ?? ''}/ (${connection.label}${readOnly ? ', read-only' : ''}) — Ctrl-C stops it`)
  if (user === undefined && !isLoopback(host)) {
    ctx.stderr.write(`warning: the dashboard listens on ${host} without --user/--password: anyone who reaches it can ${readOnly ? 'read every job' : 'retry, delete and cancel jobs'}\n`)
  }
  const stop = deferred()
  const off = ctx.onInterrupt(stop.resolve)
  await stop.promise
  off()
  server.closeAllConnections()
  server.close()
  await handler.close()
  return 0
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve = (): void => {}
  const promise = new Promise<void>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}
