/**
 * What keeps the dashboard safe to expose: security headers with a strict Content-Security-Policy
 * (no inline script or style), the CSRF check of every write (same origin and a token), and HTTP
 * Basic authentication for the standalone server.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The policy of every response: scripts, styles and requests from the dashboard's own origin only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"
].join('; ')

/** Sets the headers every dashboard response carries. */
export function securityHeaders (res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('X-Frame-Options', 'DENY')
  res.setHeader('Referrer-Policy', 'same-origin')
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin')
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin')
}

/** The name of the CSRF cookie; the page carries the same value for its requests' `x-relayq-csrf` header. */
export const CSRF_COOKIE = 'relayq_csrf'
/** The request header that must carry the token on every write. */
export const CSRF_HEADER = 'x-relayq-csrf'

/** The CSRF token the request's cookie carries, if it has a well-formed one. */
export function csrfCookie (req: IncomingMessage): string | undefined {
  const header = req.headers.cookie
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const [name, value] = part.trim().split('=', 2)
    if (name === CSRF_COOKIE && value !== undefined && /^[A-Za-z0-9_-]{32}$/.test(value)) return value
  }
  return undefined
}

/** The request's token, or a new one set as a cookie (HttpOnly, SameSite=Strict, scoped to the dashboard's path). */
export function ensureCsrfToken (req: IncomingMessage, res: ServerResponse, path: string): string {
  const existing = csrfCookie(req)
  if (existing !== undefined) return existing
  const token = randomBytes(24).toString('base64url')
  const secure = 'encrypted' in req.socket && req.socket.encrypted === true ? '; Secure' : ''
  res.setHeader('Set-Cookie', `${CSRF_COOKIE}=${token}; Path=${path === '' ? '/' : path}; HttpOnly; SameSite=Strict${secure}`)
  return token
}

/**
 * Why a write must be refused as cross-site, or null when it may go on: the `Origin` (or, without
 * one, `Sec-Fetch-Site`) must name this host, and the `x-relayq-csrf` header must equal the cookie
 * the dashboard set (a page of another site can send neither).
 */
export function csrfProblem (req: IncomingMessage): string | null {
  const origin = req.headers.origin
  if (origin !== undefined) {
    let host: string
    try {
      host = new URL(origin).host
    } catch {
      return 'the Origin header is not a URL'
    }
    if (host !== req.headers.host) return 'the request comes from another origin'
  } else {
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin') return 'the request comes from another site'
  }
  const cookie = csrfCookie(req)
  const header = req.headers[CSRF_HEADER]
  if (cookie === undefined || typeof header !== 'string') return 'the CSRF token is missing (reload the page)'
  const a = Buffer.from(cookie)
  const b = Buffer.from(header)
  if (a.length !== b.length || !timingSafeEqual(a, b)) return 'the CSRF token does not match (reload the page)'
  return null
}

/** A checker of HTTP Basic credentials against one user and password (compared in constant time). */
export function basicAuth (user: string, password: string): (req: IncomingMessage) => boolean {
  const expected = Buffer.from(`${user}:${password}`)
  return req => {
    const header = req.headers.authorization
    if (header === undefined || !/^Basic [A-Za-z0-9+/=]+$/.test(header)) return false
    const given = Buffer.from(Buffer.from(header.slice(6), 'base64').toString('utf8'))
    // Compare equal lengths only, but always spend one comparison so timing tells nothing.
    const same = timingSafeEqual(given.length === expected.length ? given : expected, expected)
    return same && given.length === expected.length
  }
}
