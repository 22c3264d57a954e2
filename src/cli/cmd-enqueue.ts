/** `relayq enqueue <queue> <id> --data JSON|@file|@- [--delay] [--wait --timeout]`: a job (or an RPC) from a shell. */
import { readFile } from 'node:fs/promises'
import { Producer } from '../producer.ts'
import { MsgpackSerde } from '../serde.ts'
import type { EnqueueOptions } from '../types.ts'
import type { Context } from './commands.ts'
import { UsageError } from './flags.ts'
import { replacer } from './output.ts'

export async function enqueue (ctx: Context): Promise<number | undefined> {
  const [queue, id] = ctx.args
  const payload = JSON.parse(await readData(ctx, ctx.flags.data as string)) as unknown
  const { storage } = await ctx.connection()
  const serde = ctx.flags.serde === 'msgpack' ? new MsgpackSerde() : undefined
  const producer = new Producer<unknown, unknown>({ storage, name: queue, ...(serde !== undefined && { payloadSerde: serde, resultSerde: serde }) })
  const options: EnqueueOptions & { timeout?: number } = {
    ...(ctx.flags.delay !== undefined && { delay: ctx.flags.delay as number }),
    ...(ctx.flags.attempts !== undefined && { maxAttempts: ctx.flags.attempts as number }),
    ...(ctx.flags['result-ttl'] !== undefined && { resultTTL: ctx.flags['result-ttl'] as number })
  }
  const out = ctx.out
  try {
    if (ctx.flags.wait !== true) {
      const result = await producer.enqueue(id, payload, options)
      out.value({ queue, id, ...result }, () => {
        out.line(result.status === 'queued' ? `Enqueued ${id} on ${queue}.` : result.status === 'duplicate' ? `Not enqueued: ${id} is already ${result.existingState}.` : `Not enqueued: ${id} already completed.`)
      })
      return undefined
    }
    const started = Date.now()
    try {
      const result = await producer.enqueueAndWait(id, payload, { ...options, timeout: ctx.flags.timeout as number })
      out.value({ queue, id, status: 'completed', result, ms: Date.now() - started }, () => out.line(JSON.stringify(result, replacer, 2) ?? '(no result)'))
      return undefined
    } catch (err) {
      const e = err as Error & { code?: string }
      out.value({ queue, id, status: 'error', error: { name: e.name, code: e.code, message: e.message }, ms: Date.now() - started }, () => {})
      out.note(`relayq: ${e.message}`)
      return 1
    }
  } finally {
    await producer.stop()
  }
}

/** `--data`: JSON text, `@file`, or `@-` (stdin). Refuses what is not JSON, naming the flag. */
async function readData (ctx: Context, data: string): Promise<string> {
  let text = data
  if (data === '@-') {
    if (ctx.stdin === undefined || ctx.stdin.isTTY === true) throw new UsageError('--data @- reads the payload from stdin: pipe it in')
    const chunks: Buffer[] = []
    for await (const chunk of ctx.stdin) chunks.push(Buffer.from(chunk as Buffer))
    text = Buffer.concat(chunks).toString()
  } else if (data.startsWith('@')) {
    try {
      text = await readFile(data.slice(1), 'utf8')
    } catch (err) {
      throw new UsageError(`--data: cannot read ${data.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  try {
    JSON.parse(text)
  } catch (err) {
    throw new UsageError(`--data: not JSON (${(err as Error).message})`)
  }
  return text
}
