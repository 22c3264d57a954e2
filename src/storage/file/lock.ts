/**
 * Lock files with an expiry, without flock: each lock is a directory of generation files
 * (`000000000007`, ...) whose newest one says who holds the lock and until when (epoch ms).
 *
 * Every change (take, renew, take over an expired lock, release) writes the next generation with
 * link(2) of a complete temporary file: link fails with EEXIST if that generation exists, so of two
 * processes that saw the same state only one moves the lock on, and nobody ever sees a partial
 * file. A holder that dies (kill -9) simply stops renewing: once its deadline passes, the next
 * acquirer writes a newer generation. There is no window in which the lock looks free while held.
 */
import { linkSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DIR_MODE, writeTmp } from './paths.ts'

interface Holder { owner: string, until: number }

const GEN_RE = /^\d{12}$/
const genName = (n: number): string => String(n).padStart(12, '0')
/** Contended attempts before giving up (each lost one means another process moved the lock on). */
const ATTEMPTS = 8
/** Temporary files older than this are leftovers of a crash, in ms. */
const TMP_MAX_AGE = 60_000

/** Takes or renews the lock in `dir` for `owner` until `now + ttl`; false if someone else holds it. */
export function acquireLock (dir: string, owner: string, ttl: number, now: number): boolean {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE })
  for (let i = 0; i < ATTEMPTS; i++) {
    const current = readCurrent(dir)
    if (current === undefined) continue // its file vanished under us: look again
    const { gen, holder } = current
    if (holder !== null && holder.owner !== owner && holder.until > now) return false
    if (writeGeneration(dir, gen + 1, { owner, until: now + ttl })) {
      prune(dir, gen)
      return true
    }
  }
  return false
}

/** Releases the lock in `dir` if `owner` holds it. */
export function releaseLock (dir: string, owner: string): void {
  for (let i = 0; i < ATTEMPTS; i++) {
    let current
    try {
      current = readCurrent(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // never taken
      throw err
    }
    if (current === undefined) continue
    if (current.holder?.owner !== owner) return
    // Lost race: someone else moved the lock on first (it had expired); then it is not ours to release.
    if (writeGeneration(dir, current.gen + 1, { owner: '', until: 0 })) prune(dir, current.gen)
    return
  }
}

/** The newest generation and its holder (null: free, or unreadable after a power loss). */
function readCurrent (dir: string): { gen: number, holder: Holder | null } | undefined {
  let gen = 0
  for (const name of readdirSync(dir)) if (GEN_RE.test(name)) gen = Math.max(gen, Number(name))
  if (gen === 0) return { gen, holder: null }
  let text: string
  try {
    text = readFileSync(join(dir, genName(gen)), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const h = JSON.parse(text) as Partial<Holder>
    if (typeof h.owner === 'string' && h.owner !== '' && typeof h.until === 'number') return { gen, holder: { owner: h.owner, until: h.until } }
  } catch {
    // A file emptied by a power loss: treat the lock as free.
  }
  return { gen, holder: null }
}

/** Creates generation `gen` exclusively; false if it already exists. */
function writeGeneration (dir: string, gen: number, holder: Holder): boolean {
  // Lock files are not fsynced: after a power loss every holder is gone anyway.
  const tmp = writeTmp(dir, Buffer.from(JSON.stringify(holder)), false)
  try {
    linkSync(tmp, join(dir, genName(gen)))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    unlinkSync(tmp)
  }
}

/** Removes generations older than `keep` (a reader may still be reading `keep`) and stale temporary files. */
function prune (dir: string, keep: number): void {
  for (const name of readdirSync(dir)) {
    try {
      if (GEN_RE.test(name)) {
        if (Number(name) < keep) unlinkSync(join(dir, name))
      } else if (name.startsWith('.tmp-') && Date.now() - statSync(join(dir, name)).mtimeMs > TMP_MAX_AGE) {
        unlinkSync(join(dir, name))
      }
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
