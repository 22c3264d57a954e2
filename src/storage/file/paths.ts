/**
 * Where the file backend puts things, and the directory's identity file. Queue and lock names are
 * arbitrary user strings; they reach the file system only through {@link entryName}: a short
 * `[a-z0-9_-]` prefix for humans plus a SHA-256 of the exact name, so no name can escape `basePath`,
 * hit a reserved device name, collide with another name on a case-insensitive disk or exceed a
 * file-name length limit. Job ids never become paths at all: they only live inside the log.
 */
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from './codec.ts'

/** Directories: owner only (no group or world access). */
export const DIR_MODE = 0o700
/** Files: owner read/write only. */
export const FILE_MODE = 0o600
/** The on-disk format this code writes (5: jobs may carry a trace context; see ops.ts and snapshot.ts). */
export const FORMAT = 5
/** The older formats this code still reads: opening such a directory upgrades its identity file. */
const OLDER_FORMATS: readonly unknown[] = [3, 4]

const META = 'relayq-file.json'

/**
 * The file-system name for a queue or lock name. The hash covers the name's UTF-16 code units, so
 * names that differ only by a lone surrogate (which UTF-8 cannot carry) stay apart.
 */
export function entryName (name: string): string {
  const hash = createHash('sha256').update(Buffer.from(name, 'utf16le')).digest('hex').slice(0, 40)
  const readable = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').slice(0, 24)
  return `${readable}-${hash}`
}

/** The directory of queue `queue`. */
export function queueDir (basePath: string, queue: string): string {
  return join(basePath, 'queues', entryName(queue))
}

/** The file in a queue's directory that holds the queue's name (directory names are hashes). */
const NAME_FILE = 'queue.json'

/** Creates the directory of queue `queue` if missing, with the file that names it. */
export function createQueueDir (basePath: string, queue: string): string {
  const dir = queueDir(basePath, queue)
  mkdirSync(dir, { recursive: true, mode: DIR_MODE })
  const path = join(dir, NAME_FILE)
  if (!existsSync(path)) {
    // JSON keeps a lone surrogate as an escape: any name round-trips.
    renameSync(writeTmp(dir, Buffer.from(JSON.stringify({ name: queue }) + '\n'), false), path)
  }
  return dir
}

/** The names of the queues under `basePath` (a directory of format 3, which names none, is left out). */
export function queueNames (basePath: string): string[] {
  const names: string[] = []
  for (const entry of readdirSync(join(basePath, 'queues'))) {
    try {
      const { name } = JSON.parse(readFileSync(join(basePath, 'queues', entry, NAME_FILE), 'utf8')) as { name?: unknown }
      if (typeof name === 'string' && queueDir(basePath, name) === join(basePath, 'queues', entry)) names.push(name)
    } catch {
      // No name file (format 3, or being created): not listed.
    }
  }
  return names
}

/** The directory of lock `name`. */
export function lockDir (basePath: string, name: string): string {
  return join(basePath, 'locks', entryName(name))
}

/** A unique temporary file name in `dir` (`.tmp-` files are never read, and are swept when old). */
export function tmpPath (dir: string): string {
  return join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
}

/** Writes `data` to a new temporary file in `dir` and returns its path; fsyncs it when `durable`. */
export function writeTmp (dir: string, data: Uint8Array, durable: boolean): string {
  const path = tmpPath(dir)
  const fd = openSync(path, 'wx', FILE_MODE)
  try {
    let off = 0
    while (off < data.length) off += writeSync(fd, data, off, data.length - off)
    if (durable) fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return path
}

/** Flushes a directory's entries (new, renamed or removed files) to disk. */
export function fsyncDir (dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Creates `basePath` if needed and reads (or, first, creates) its identity file: the format version
 * and the random salt that seeds every frame checksum. Created once, exclusively (link(2) of a
 * complete file), and always fsynced: the salt is needed to read anything.
 * @returns the checksum seed
 */
export function openBase (basePath: string): number {
  mkdirSync(basePath, { recursive: true, mode: DIR_MODE })
  mkdirSync(join(basePath, 'queues'), { recursive: true, mode: DIR_MODE })
  mkdirSync(join(basePath, 'locks'), { recursive: true, mode: DIR_MODE })
  const path = join(basePath, META)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const meta = JSON.stringify({ format: FORMAT, salt: randomBytes(16).toString('hex') }) + '\n'
    const tmp = writeTmp(basePath, Buffer.from(meta), true)
    try {
      linkSync(tmp, path) // EEXIST: another process made it first; theirs counts
      fsyncDir(basePath)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    } finally {
      unlinkSync(tmp)
    }
    text = readFileSync(path, 'utf8')
  }
  let meta: { format?: unknown, salt?: unknown }
  try {
    meta = JSON.parse(text)
  } catch (err) {
    throw new Error(`${path} is not valid JSON`, { cause: err })
  }
  if (meta.format !== FORMAT && !OLDER_FORMATS.includes(meta.format)) throw new Error(`${path} has format ${String(meta.format)}; this version reads formats 3 to ${FORMAT}`)
  if (typeof meta.salt !== 'string' || !/^[0-9a-f]{32}$/.test(meta.salt)) throw new Error(`${path} has no valid salt`)
  if (meta.format !== FORMAT) {
    // Logs and snapshots of formats 3 and 4 replay as they are; the new format number keeps a
    // process of an older version from opening the directory once frames it cannot read may follow.
    renameSync(writeTmp(basePath, Buffer.from(JSON.stringify({ format: FORMAT, salt: meta.salt }) + '\n'), true), path)
    fsyncDir(basePath)
  }
  return crc32(Buffer.from(meta.salt, 'hex'))
}
