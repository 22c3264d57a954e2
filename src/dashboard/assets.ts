/**
 * The dashboard's static files, served from the package itself (no CDN: it works offline): its own
 * script and stylesheet, and uPlot's, read once and kept in memory with an ETag.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

interface Asset { body: Buffer, type: string, etag: string }

const require = createRequire(import.meta.url)
const own = (name: string): string => fileURLToPath(new URL(`./assets/${name}`, import.meta.url))

/** The files that may be asked for, by the name in the URL. Nothing else is ever read. */
const FILES: Readonly<Record<string, { path: () => string, type: string }>> = {
  'dashboard.js': { path: () => own('dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { path: () => own('dashboard.css'), type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { path: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { path: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' }
}

const cache = new Map<string, Promise<Asset>>()

/** The asset named `name`, or undefined when there is none by that name. */
export function asset (name: string): Promise<Asset> | undefined {
  const file = Object.hasOwn(FILES, name) ? FILES[name] : undefined
  if (file === undefined) return undefined
  let loaded = cache.get(name)
  if (loaded === undefined) {
    loaded = readFile(file.path()).then(body => ({ body, type: file.type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` }))
    loaded.catch(() => cache.delete(name))
    cache.set(name, loaded)
  }
  return loaded
}
