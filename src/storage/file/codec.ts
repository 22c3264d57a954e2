/**
 * Byte-level building blocks of the file backend: a growable writer, a reader, CRC-32 and the
 * frame format of the log.
 *
 * A frame is one commit of one storage instance:
 *
 *   offset 0   magic        u32 'RQF1'
 *          4   body length  u32
 *          8   header check u32  crc32(bytes 0..8, seeded with the directory's salt)
 *         12   body check   u32  crc32(body, seeded with the salt)
 *         16   body
 *
 * Readers apply a frame only when both checks pass, so a frame torn by a process killed in the
 * middle of its write(2) is never applied, by anybody. The salt (random per directory) means bytes
 * inside a payload can never pass for a frame when a reader resynchronizes after a torn frame.
 */
import * as zlib from 'node:zlib'
import { isWellFormed } from '../../options.ts'

/** First 4 bytes of every frame: 'RQF1' read as a little-endian u32. */
export const FRAME_MAGIC = 0x31465152
/** Bytes of a frame header (magic, length, header check, body check). */
export const FRAME_HEADER = 16
/** Larger declared lengths are garbage, not frames (a frame holds one call's jobs). */
export const MAX_FRAME = 1 << 30

const TABLE = (() => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

/** Plain-JS CRC-32 (IEEE), for Node versions without `zlib.crc32`. */
export function crc32js (data: Uint8Array, value = 0): number {
  let c = ~value
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8)
  return ~c >>> 0
}

type Crc = (data: Uint8Array, value?: number) => number
/** CRC-32 (IEEE): zlib's native one where Node has it (20.15+), the same function in JS before. */
export const crc32: Crc = (zlib as unknown as { crc32?: Crc }).crc32 ?? crc32js

/** Strings up to this many UTF-16 units are tried as ASCII in JS: cheaper than a native call for ids. */
const SHORT_STRING = 64

/** A growable little-endian byte writer. */
export class Writer {
  buf: Buffer
  pos = 0
  // A DataView writes numbers inline; Buffer#writeDoubleLE goes through a scratch array.
  #dv: DataView

  constructor (size = 4096) {
    this.buf = Buffer.allocUnsafe(size)
    this.#dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  }

  reserve (n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
    this.#dv = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }

  u8 (v: number): void {
    this.reserve(1)
    this.buf[this.pos++] = v
  }

  u32 (v: number): void {
    this.reserve(4)
    this.#dv.setUint32(this.pos, v, true)
    this.pos += 4
  }

  f64 (v: number): void {
    this.reserve(8)
    this.#dv.setFloat64(this.pos, v, true)
    this.pos += 8
  }

  /**
   * A string, losslessly: UTF-8 when well formed, else UTF-16 (flagged in the length's top bit).
   * UTF-8 would turn a lone surrogate into U+FFFD, and two different ids into the same one.
   */
  str (s: string): void {
    const len = s.length
    if (len <= SHORT_STRING) {
      this.reserve(4 + len)
      const buf = this.buf
      const start = this.pos + 4
      let i = 0
      for (; i < len; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        buf[start + i] = c
      }
      if (i === len) {
        this.#dv.setUint32(this.pos, len, true)
        this.pos = start + len
        return
      }
    }
    if (isWellFormed(s)) {
      this.reserve(4 + len * 3)
      const n = this.buf.write(s, this.pos + 4, 'utf8')
      this.#dv.setUint32(this.pos, n, true)
      this.pos += 4 + n
    } else {
      this.reserve(4 + len * 2)
      const n = this.buf.write(s, this.pos + 4, 'utf16le')
      this.#dv.setUint32(this.pos, (n | 0x80000000) >>> 0, true)
      this.pos += 4 + n
    }
  }

  bytes (b: Uint8Array): void {
    this.reserve(4 + b.length)
    this.#dv.setUint32(this.pos, b.length, true)
    this.buf.set(b, this.pos + 4)
    this.pos += 4 + b.length
  }
}

/** Thrown by {@link Reader} on bytes that do not decode: the caller treats the source as corrupt. */
export class DecodeError extends Error {}

/** Reads what {@link Writer} wrote. Buffers are copied out, so the source buffer can be reused. */
export class Reader {
  readonly buf: Buffer
  pos: number
  readonly end: number

  readonly #dv: DataView

  constructor (buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf
    this.pos = start
    this.end = end
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  #need (n: number): void {
    if (this.pos + n > this.end) throw new DecodeError('Truncated record')
  }

  u8 (): number {
    this.#need(1)
    return this.buf[this.pos++]
  }

  u32 (): number {
    this.#need(4)
    const v = this.#dv.getUint32(this.pos, true)
    this.pos += 4
    return v
  }

  f64 (): number {
    this.#need(8)
    const v = this.#dv.getFloat64(this.pos, true)
    this.pos += 8
    return v
  }

  str (): string {
    const head = this.u32()
    const n = head & 0x7fffffff
    this.#need(n)
    const s = this.buf.toString(head & 0x80000000 ? 'utf16le' : 'utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }

  bytes (): Buffer {
    const n = this.u32()
    this.#need(n)
    // A copy: the read buffer is reused, and a slice would keep all of it alive.
    const b = Buffer.allocUnsafe(n)
    this.buf.copy(b, 0, this.pos, this.pos + n)
    this.pos += n
    return b
  }
}

/** Seals the frame whose body was written after a {@link FRAME_HEADER}-byte gap at `start`. */
export function sealFrame (w: Writer, start: number, seed: number): void {
  const buf = w.buf
  const bodyLength = w.pos - start - FRAME_HEADER
  buf.writeUInt32LE(FRAME_MAGIC, start)
  buf.writeUInt32LE(bodyLength, start + 4)
  buf.writeUInt32LE(crc32(buf.subarray(start, start + 8), seed), start + 8)
  buf.writeUInt32LE(crc32(buf.subarray(start + FRAME_HEADER, w.pos), seed), start + 12)
}

/** The body length of a valid frame header at `off` (16 bytes available), or -1. */
export function frameLength (buf: Buffer, off: number, seed: number): number {
  if (buf.readUInt32LE(off) !== FRAME_MAGIC) return -1
  const length = buf.readUInt32LE(off + 4)
  if (length > MAX_FRAME || crc32(buf.subarray(off, off + 8), seed) !== buf.readUInt32LE(off + 8)) return -1
  return length
}

/** True when the complete frame at `off` (header valid, `length` body bytes available) has an intact body. */
export function frameIntact (buf: Buffer, off: number, length: number, seed: number): boolean {
  const body = off + FRAME_HEADER
  return crc32(buf.subarray(body, body + length), seed) === buf.readUInt32LE(off + 12)
}

const MAGIC_BYTES = Buffer.alloc(4)
MAGIC_BYTES.writeUInt32LE(FRAME_MAGIC)

/** The next offset in [from, end) where a frame header could start, or -1. */
export function findMagic (buf: Buffer, from: number, end: number): number {
  const at = buf.subarray(0, end).indexOf(MAGIC_BYTES, from)
  return at
}
