import { createHash, randomUUID } from 'node:crypto'

/** A random job id (a UUID v4), for jobs that need no dedup. */
export function generateId (): string {
  return randomUUID()
}

/**
 * A job id derived from the payload (first 16 hex digits of the SHA-256 of its JSON), so that
 * enqueueing the same payload twice is deduplicated. Key order matters: `{a, b}` and `{b, a}` differ.
 */
export function contentId (payload: unknown): string {
  return createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 16)
}
