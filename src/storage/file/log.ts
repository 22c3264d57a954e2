/**
 * One queue's log: a directory of append-only segment files of frames (see codec.ts), plus
 * snapshots. Every storage instance using the queue appends its operations as frames and replays
 * everybody's frames, in file order, into its own {@link QueueState}.
 *
 * - Appends use O_APPEND: on a local file system one write(2) lands whole at the end of the file,
 *   never interleaved with another process's. The file order is the one order every process sees.
 * - A writer learns its outcome by reading on from where it was up to its own frame: every frame
 *   before it is decided by then.
 * - `seg-N.log` grows until a writer appends a seal frame; frames after the first seal are void
 *   (their writers append them again to `seg-N+1.log`). The writer whose seal counts then owes a
 *   snapshot: its state at some position of segment N+1, serialized into `snap-N+1.bin` (tmp +
 *   rename) with that position. It pays the debt once it has been idle for {@link IDLE_SNAPSHOT}
 *   ms (a whole period without a commit of its own), or at the latest when the segment is half way to its own seal, or when it closes: the cost
 *   (linear in the queue's size) lands in a quiet moment rather than in the middle of a burst. Then
 *   segments and snapshots older than the previous snapshot are deleted (one generation back).
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { FRAME_HEADER, MAX_FRAME, Reader, Writer, crc32, findMagic, frameIntact, frameLength, sealFrame } from './codec.ts'
import { SEAL, applyOp, decodeFrameBody, encodeFrameBody, type Op } from './ops.ts'
import { FILE_MODE, fsyncDir, writeTmp } from './paths.ts'
import { QueueState } from '../queue-state.ts'
import { decodeLegacyState, decodeState, encodeState } from './snapshot.ts'

/** What a {@link QueueLog} needs from its storage instance. */
export interface LogOptions {
  /** The queue's directory (exists). */
  readonly dir: string
  /** Checksum seed of the directory. */
  readonly seed: number
  /** This storage instance's token (tags its frames; selects its `done` notices). */
  readonly token: number
  /** The instance's frame numbers: unique across all its queues and reconnections, so (token, seq) names one frame. */
  readonly nextSeq: () => number
  /** Epoch ms written into each frame. */
  readonly clock: () => number
  /** Flush frames before `durable()` resolves; fsync snapshots, new segments and the directory. */
  readonly fsync: boolean
  /** Bytes after which a segment is sealed and the state snapshotted. */
  readonly segmentSize: number
}

interface Pending {
  readonly seq: number
  readonly ops: readonly Op[]
  applied: boolean
  outcomes: unknown[]
}

const SNAP_MAGIC = 0x33535152 // 'RQS3': format 4 (see snapshot.ts)
const SNAP_MAGIC_3 = 0x32535152 // 'RQS2': format 3, still read
const SEG_RE = /^seg-(\d{12})\.log$/
const SNAP_RE = /^snap-(\d{12})\.bin$/
/** A snapshot owed is written once a whole period of this many ms passes without a commit of this instance. */
export const IDLE_SNAPSHOT = 100
/** Temporary files older than this are leftovers of a crash, in ms. */
const TMP_MAX_AGE = 60_000

const segName = (n: number): string => `seg-${String(n).padStart(12, '0')}.log`
const snapName = (n: number): string => `snap-${String(n).padStart(12, '0')}.bin`

/** A queue's log opened by one storage instance: its state, kept current by {@link QueueLog.sync}. */
export class QueueLog {
  state: QueueState
  /** Set when the log had to be reloaded from a snapshot (this process fell too far behind): notices may be lost. */
  reloaded = false
  readonly #o: LogOptions
  #segment = 0
  #fd = -1
  /** Offset in the current segment of the first byte not yet applied. */
  #pos = 0
  #buf = Buffer.allocUnsafe(256 * 1024)
  #pending: Pending | undefined
  /** Our seal counted: this instance owes the snapshot of the segment it started. */
  #owed = false
  /** Commits so far, and as the idle timer last saw them: the owed snapshot waits for a quiet moment. */
  #commits = 0
  #commitsSeen = 0
  #idleTimer: NodeJS.Timeout | undefined
  #closed = false
  /** Bytes of the newest snapshot this instance wrote or loaded. */
  #snapshotSize = 0
  /** Where the current segment gets sealed (grows with the snapshot: no rewrite of a big state for a small log). */
  #sealAt = Infinity
  readonly #writer = new Writer(64 * 1024)
  // fsync mode: group commit.
  #written = 0
  #flushed = 0
  #flushing = false
  #flushWaiters: Array<{ target: number, resolve: () => void, reject: (err: Error) => void }> = []
  #retired: number[] = []

  constructor (options: LogOptions) {
    this.#o = options
    this.state = new QueueState(options.token)
    this.#load()
    this.sync()
  }

  /** Reads and applies every complete frame written since the last call. True if any was applied. */
  sync (): boolean {
    let applied = false
    for (;;) {
      const buf = this.#buf
      const n = readSync(this.#fd, buf, 0, buf.length, this.#pos)
      if (n === 0) return applied
      const { consumed, sealed, need, any } = this.#parse(n)
      applied ||= any
      this.#pos += consumed
      if (sealed) {
        this.#nextSegment()
        continue
      }
      if (need > buf.length) {
        this.#buf = Buffer.allocUnsafe(need)
        continue
      }
      if (n < buf.length) return applied
      // A full buffer and no progress: bad bytes longer than the buffer. Read more to get past them.
      if (consumed === 0) this.#buf = Buffer.allocUnsafe(buf.length * 2)
    }
  }

  /** Appends `ops` as one frame, reads up to it and returns the outcome of each op. */
  commit (ops: readonly Op[]): unknown[] {
    const pending: Pending = { seq: this.#o.nextSeq(), ops, applied: false, outcomes: [] }
    const frame = this.#frame(pending.seq, ops)
    // Readers take a longer frame for garbage: refuse it rather than write what nobody applies.
    if (frame.length - FRAME_HEADER > MAX_FRAME) throw new RangeError(`One operation of ${frame.length} bytes is larger than a log frame holds (${MAX_FRAME} bytes)`)
    this.#commits++
    this.#pending = pending
    try {
      for (;;) {
        const segment = this.#segment
        this.#append(frame)
        this.sync()
        if (pending.applied) break
        // Appended after a seal: void, and the reader moved to the next segment. Append again there.
        if (this.#segment === segment) throw new Error('A frame just appended was not found in the log')
      }
    } finally {
      this.#pending = undefined
    }
    if (this.#owed) this.#payDebt()
    if (this.#pos >= this.#sealAt && this.#sealDue()) this.#seal()
    return pending.outcomes
  }

  /** Resolves once every frame this instance appended so far is on disk (at once without `fsync`). */
  durable (): Promise<void> {
    if (!this.#o.fsync || this.#flushed >= this.#written) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#flushWaiters.push({ target: this.#written, resolve, reject })
      this.#flush()
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#idleTimer)
    // Written now rather than left to the next process (which would replay the whole segment).
    if (this.#owed) this.#writeSnapshot()
    if (this.#o.fsync) await this.durable()
    while (this.#flushing) await new Promise<void>(resolve => this.#flushWaiters.push({ target: 0, resolve, reject: () => resolve() }))
    this.#closeFd(this.#fd)
    this.#fd = -1
  }

  #frame (seq: number, ops: readonly Op[]): Buffer {
    const w = this.#writer
    w.pos = FRAME_HEADER
    encodeFrameBody(w, this.#o.token, seq, this.#o.clock(), ops)
    sealFrame(w, 0, this.#o.seed)
    return w.buf.subarray(0, w.pos)
  }

  #append (frame: Buffer): void {
    const n = writeSync(this.#fd, frame)
    // A short write (disk full) leaves a torn frame that every reader skips.
    if (n !== frame.length) throw new Error(`Short write to the log (${n} of ${frame.length} bytes)`)
    this.#written++
  }

  /** Parses frames in the first `n` bytes of the read buffer. */
  #parse (n: number): { consumed: number, sealed: boolean, need: number, any: boolean } {
    const buf = this.#buf
    const seed = this.#o.seed
    let off = 0
    let any = false
    while (off + FRAME_HEADER <= n) {
      const length = frameLength(buf, off, seed)
      const end = off + FRAME_HEADER + length
      if (length >= 0 && end > n) {
        // Incomplete: being written right now, or torn by a writer killed mid-write. A complete
        // frame after it proves the latter (an append in progress holds the end of the file).
        const next = this.#nextFrame(off + 4, n, true)
        if (next >= 0) {
          off = next
          continue
        }
        return { consumed: off, sealed: false, need: FRAME_HEADER + length, any }
      }
      if (length < 0 || !frameIntact(buf, off, length, seed)) {
        // Not a frame: the rest of a torn frame, or garbage left by a power loss. Skipped only once
        // a frame header follows it: that proves its writer is done (appends are serialized), so
        // these bytes are final and not a frame still being copied in or read too early.
        const next = this.#nextFrame(off + 1, n, false)
        if (next < 0) break
        off = next
        continue
      }
      const sealed = this.#apply(off + FRAME_HEADER, end)
      any = true
      off = end
      if (sealed) return { consumed: off, sealed: true, need: 0, any }
    }
    return { consumed: off, sealed: false, need: 0, any }
  }

  /**
   * The offset of the next frame start in [from, n): a valid header followed by an intact body,
   * or (unless `complete`) a valid header whose body is not all there yet. -1 if none.
   */
  #nextFrame (from: number, n: number, complete: boolean): number {
    const buf = this.#buf
    const seed = this.#o.seed
    for (let at = findMagic(buf, from, n); at >= 0 && at + FRAME_HEADER <= n; at = findMagic(buf, at + 1, n)) {
      const length = frameLength(buf, at, seed)
      if (length < 0) continue
      if (at + FRAME_HEADER + length > n) {
        if (!complete) return at
      } else if (frameIntact(buf, at, length, seed)) {
        return at
      }
    }
    return -1
  }

  /** Applies the frame body in [start, end) of the read buffer. True if it sealed the segment. */
  #apply (start: number, end: number): boolean {
    const buf = this.#buf
    const token = buf.readDoubleLE(start)
    const seq = buf.readDoubleLE(start + 8)
    const pending = this.#pending
    let ops: readonly Op[]
    let time: number
    if (pending !== undefined && token === this.#o.token && seq === pending.seq) {
      // Our own frame: apply the ops we hold (same values, no decoding, no copies).
      ops = pending.ops
      time = buf.readDoubleLE(start + 16)
      pending.applied = true
    } else {
      try {
        const frame = decodeFrameBody(new Reader(buf, start, end))
        ops = frame.ops
        time = frame.time
      } catch {
        // An intact frame this code cannot decode: every process skips it the same way.
        return false
      }
    }
    if (ops[0]?.kind === 'seal') {
      if (pending?.applied === true && pending.ops === ops) this.#owed = true
      return true
    }
    const state = this.state
    const now = state.advance(time)
    const outcomes: unknown[] = new Array(ops.length)
    for (let i = 0; i < ops.length; i++) outcomes[i] = applyOp(state, now, token, ops[i])
    if (pending !== undefined && pending.ops === ops) pending.outcomes = outcomes
    return false
  }

  /** The snapshot file: a header like a frame's, then the body: the offset in the segment (f64) and the state. */
  #encodeState (): Buffer {
    // Sized for the last snapshot plus a margin: growing a big buffer means copying it.
    const w = new Writer(Math.max(1024 * 1024, Math.ceil(this.#snapshotSize * 1.25)))
    w.pos = FRAME_HEADER
    w.f64(this.#pos)
    encodeState(w, this.state)
    const body = w.buf.subarray(FRAME_HEADER, w.pos)
    w.buf.writeUInt32LE(SNAP_MAGIC, 0)
    w.buf.writeUInt32LE(body.length, 4)
    w.buf.writeUInt32LE(crc32(body, this.#o.seed), 8)
    w.buf.writeUInt32LE(0, 12)
    return w.buf.subarray(0, w.pos)
  }

  /**
   * True if the current segment should be sealed now: at least `segmentSize` bytes, and twice the
   * snapshot it starts from (read now: this process may not have seen that snapshot written).
   */
  #sealDue (): boolean {
    try {
      this.#sealAt = Math.max(this.#sealAt, 2 * statSync(join(this.#o.dir, snapName(this.#segment))).size)
    } catch {
      // No snapshot for this segment (the first one, or its sealer died): the base size applies.
    }
    return this.#pos >= this.#sealAt
  }

  /** Appends a seal frame. If ours is the one that counts (another writer's may come first), we owe the snapshot. */
  #seal (): void {
    const pending: Pending = { seq: this.#o.nextSeq(), ops: [SEAL], applied: false, outcomes: [] }
    this.#pending = pending
    try {
      this.#append(this.#frame(pending.seq, pending.ops))
      this.sync()
    } finally {
      this.#pending = undefined
    }
    if (this.#owed) this.#payDebt()
  }

  /**
   * Writes the owed snapshot now if the segment is half way to its seal, else once a whole
   * {@link IDLE_SNAPSHOT} period passes without a commit of this instance.
   */
  #payDebt (): void {
    if (this.#pos >= this.#sealAt / 2) {
      this.#writeSnapshot()
    } else if (this.#idleTimer === undefined) {
      this.#commitsSeen = this.#commits
      this.#idleTimer = setTimeout(() => this.#onIdle(), IDLE_SNAPSHOT).unref()
    }
  }

  #onIdle (): void {
    this.#idleTimer = undefined
    if (this.#closed || !this.#owed) return
    if (this.#commits === this.#commitsSeen) {
      this.#writeSnapshot()
    } else {
      this.#commitsSeen = this.#commits
      this.#idleTimer = setTimeout(() => this.#onIdle(), IDLE_SNAPSHOT).unref()
    }
  }

  /**
   * Writes our state at our position in the current segment as that segment's snapshot, then
   * deletes what the previous snapshot made unnecessary. Never throws: a snapshot only shortens
   * the next start and frees disk space. One that fails (disk full, directory gone) is dropped,
   * the segments it would have replaced stay, and the next seal owes a new one.
   */
  #writeSnapshot (): void {
    this.#owed = false
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    const { dir, fsync } = this.#o
    let tmp: string | undefined
    try {
      // With fsync the frames the snapshot covers must be on disk first: after a power loss, a
      // snapshot pointing past the segment's end would hide the frames appended there next.
      if (fsync) {
        fdatasyncSync(this.#fd)
        this.#flushed = this.#written
      }
      const snapshot = this.#encodeState()
      const segment = this.#segment
      tmp = writeTmp(dir, snapshot, fsync)
      renameSync(tmp, join(dir, snapName(segment)))
      tmp = undefined
      if (fsync) fsyncDir(dir)
      this.#snapshotSize = snapshot.length
      this.#sealAt = Math.max(this.#o.segmentSize, 2 * snapshot.length)
      const names = readdirSync(dir)
      this.#sweep(previousSnapshot(names, segment), names)
    } catch {
      if (tmp !== undefined) {
        try {
          unlinkSync(tmp)
        } catch {
          // Swept as a stale temporary file later.
        }
      }
    }
  }

  /** Deletes segments and snapshots numbered below `keep`, and stale temporary files, of the directory listing `names`. */
  #sweep (keep: number, names: readonly string[]): void {
    const { dir } = this.#o
    for (const name of names) {
      const m = SEG_RE.exec(name) ?? SNAP_RE.exec(name)
      try {
        if (m !== null) {
          if (Number(m[1]) < keep) unlinkSync(join(dir, name))
        } else if (name.startsWith('.tmp-') && Date.now() - statSync(join(dir, name)).mtimeMs > TMP_MAX_AGE) {
          unlinkSync(join(dir, name))
        }
      } catch {
        // Gone already (another process swept it) or not ours to remove: leave it.
      }
    }
  }

  /** Loads the newest readable snapshot and replays the segments after it. */
  #load (): void {
    const { dir } = this.#o
    const segments: number[] = []
    const snapshots: number[] = []
    const names = readdirSync(dir)
    for (const name of names) {
      const seg = SEG_RE.exec(name)
      if (seg !== null) segments.push(Number(seg[1]))
      const snap = SNAP_RE.exec(name)
      if (snap !== null) snapshots.push(Number(snap[1]))
    }
    snapshots.sort((a, b) => b - a)
    let start = 0
    let offset = 0
    let size = 0
    for (const n of snapshots) {
      const loaded = this.#readSnapshot(n)
      if (loaded === undefined) continue
      this.state = loaded.state
      size = loaded.size
      offset = loaded.offset
      start = n
      break
    }
    if (start === 0) {
      // No snapshot (a new queue): the log starts at its first segment.
      this.state = new QueueState(this.#o.token)
      start = segments.length > 0 ? Math.min(...segments) : 1
    }
    this.#open(start)
    this.#pos = offset
    this.#snapshotSize = size
    this.#sealAt = Math.max(this.#o.segmentSize, 2 * size)
    if (segments.length === 0 && this.#o.fsync) fsyncDir(dir)
    this.#sweep(0, names) // temporary files a crash left behind
  }

  /** Snapshot `n` if it is intact and its position exists in segment `n`. */
  #readSnapshot (n: number): { state: QueueState, offset: number, size: number } | undefined {
    const { dir } = this.#o
    try {
      const data = readWhole(join(dir, snapName(n)))
      const magic = data.length < FRAME_HEADER ? 0 : data.readUInt32LE(0)
      if (magic !== SNAP_MAGIC && magic !== SNAP_MAGIC_3) return undefined
      const length = data.readUInt32LE(4)
      const body = data.subarray(FRAME_HEADER)
      if (body.length !== length || crc32(body, this.#o.seed) !== data.readUInt32LE(8)) return undefined
      const reader = new Reader(data, FRAME_HEADER)
      const offset = reader.f64()
      // A segment shorter than the position lost its tail (power loss): frames appended there
      // next would be skipped. An older snapshot will do.
      if (offset > 0 && statSync(join(dir, segName(n))).size < offset) return undefined
      const state = magic === SNAP_MAGIC ? decodeState(reader, this.#o.token) : decodeLegacyState(reader, this.#o.token)
      return { state, offset, size: data.length }
    } catch {
      return undefined // unreadable (e.g. torn by a power loss): an older one will do
    }
  }

  #open (segment: number): void {
    const path = join(this.#o.dir, segName(segment))
    // 'a+': reads anywhere, writes always at the end; creates the segment if it is new.
    this.#fd = openSync(path, 'a+', FILE_MODE)
    this.#segment = segment
    this.#pos = 0
  }

  /** After a seal: continue in the next segment, or reload if this process fell so far behind that it is gone. */
  #nextSegment (): void {
    const { dir, fsync } = this.#o
    const next = this.#segment + 1
    const old = this.#fd
    if (fsync) {
      fdatasyncSync(old)
      this.#flushed = this.#written
    }
    this.#retire(old)
    let exists = true
    try {
      statSync(join(dir, segName(next)))
    } catch {
      exists = false
    }
    if (!exists && this.#behind(next)) {
      this.reloaded = true
      this.#load()
      return
    }
    this.#open(next)
    if (!exists && fsync) fsyncDir(dir)
    this.#sealAt = this.#o.segmentSize // raised by #sealDue once the segment gets there
  }

  /** True when segment `next` is missing because newer segments or snapshots replaced it. */
  #behind (next: number): boolean {
    for (const name of readdirSync(this.#o.dir)) {
      const m = SEG_RE.exec(name) ?? SNAP_RE.exec(name)
      if (m !== null && Number(m[1]) > next) return true
    }
    return false
  }

  #flush (): void {
    if (this.#flushing || this.#flushWaiters.length === 0) return
    this.#flushing = true
    const target = this.#written
    fdatasync(this.#fd, err => {
      this.#flushing = false
      for (const fd of this.#retired.splice(0)) this.#closeFd(fd)
      if (err === null) this.#flushed = Math.max(this.#flushed, target)
      const waiters = this.#flushWaiters
      this.#flushWaiters = []
      for (const w of waiters) {
        if (err !== null) w.reject(err)
        else if (w.target <= this.#flushed) w.resolve()
        else this.#flushWaiters.push(w)
      }
      this.#flush()
    })
  }

  /** Closes a segment's fd, or defers it while an fdatasync may still use it. */
  #retire (fd: number): void {
    if (this.#flushing) this.#retired.push(fd)
    else this.#closeFd(fd)
  }

  #closeFd (fd: number): void {
    if (fd < 0) return
    try {
      closeSync(fd)
    } catch {
      // Already closed: nothing to release.
    }
  }
}

/** The number of the newest snapshot in `names` older than `segment` (the generation kept back), or 0. */
function previousSnapshot (names: readonly string[], segment: number): number {
  let previous = 0
  for (const name of names) {
    const m = SNAP_RE.exec(name)
    if (m !== null && Number(m[1]) < segment) previous = Math.max(previous, Number(m[1]))
  }
  return previous
}

function readWhole (path: string): Buffer {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const data = Buffer.allocUnsafe(size)
    let off = 0
    while (off < size) {
      const n = readSync(fd, data, off, size - off, off)
      if (n === 0) break
      off += n
    }
    return data.subarray(0, off)
  } finally {
    closeSync(fd)
  }
}
