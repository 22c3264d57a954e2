/**
 * Mounting the dashboard in a framework. Express needs no adapter: `app.use(basePath, handler)`
 * (the handler reads `req.originalUrl`, and a body already parsed by `express.json()`). Fastify
 * gets {@link mountFastify}: it hands the raw request and response over, body unread.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The part of a Fastify instance the adapter uses (so relayq needs no Fastify types). */
export interface FastifyLike {
  register (plugin: (instance: FastifyLike, opts: unknown, done: (err?: Error) => void) => void, opts?: { prefix?: string }): unknown
  removeAllContentTypeParsers (): void
  addContentTypeParser (type: string, fn: (req: unknown, payload: unknown, done: (err: Error | null, body?: unknown) => void) => void): void
  all (path: string, handler: (request: { raw: IncomingMessage }, reply: { raw: ServerResponse, hijack: () => void }) => void): void
}

/**
 * Serves `handler` under `basePath` of a Fastify app (give the dashboard the same `basePath`).
 * Within its own plugin scope, request bodies are left unread for the dashboard to read.
 *
 * @example
 * const dashboard = createDashboard({ storage, basePath: '/queues' })
 * mountFastify(app, dashboard, '/queues')
 */
export function mountFastify (app: FastifyLike, handler: (req: IncomingMessage, res: ServerResponse) => void, basePath: string): void {
  app.register((instance, _opts, done) => {
    instance.removeAllContentTypeParsers()
    instance.addContentTypeParser('*', (_req, _payload, next) => { next(null) })
    const serve = (request: { raw: IncomingMessage }, reply: { raw: ServerResponse, hijack: () => void }): void => {
      reply.hijack()
      handler(request.raw, reply.raw)
    }
    instance.all('/', serve)
    instance.all('/*', serve)
    done()
  }, { prefix: basePath })
}
