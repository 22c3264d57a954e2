/**
 * `relayq jobs retry|rm|cancel|promote` and `queue purge`: by ids or by selector, with a dry run,
 * a confirmation for bulk destructive work, a progress bar, and Ctrl-C that stops after the
 * current chunk and prints the command that resumes.
 */
import { createInterface } from 'node:readline/promises'
import type { BulkOptions, BulkResult, Selector } from '../admin.ts'
import type { JobState } from '../storage/types.ts'
import { queueFlag, shellQuote, withFlag } from './cmd-jobs.ts'
import type { Context } from './commands.ts'
import { UsageError } from './flags.ts'
import { count, span } from './output.ts'
import { Progress } from './progress.ts'

type Action = 'retry' | 'remove' | 'cancel' | 'promote'

const WORDS: Record<Action, { verb: string, done: string, destructive: boolean }> = {
  retry: { verb: 'retry', done: 'retried', destructive: false },
  remove: { verb: 'remove', done: 'removed', destructive: true },
  cancel: { verb: 'cancel', done: 'cancelled', destructive: true },
  promote: { verb: 'promote', done: 'promoted', destructive: false }
}

export const retry = (ctx: Context): Promise<number> => bulk(ctx, 'retry', 'jobs retry')
export const remove = (ctx: Context): Promise<number> => bulk(ctx, 'remove', 'jobs rm')
export const cancel = (ctx: Context): Promise<number> => bulk(ctx, 'cancel', 'jobs cancel')
export const promote = (ctx: Context): Promise<number> => bulk(ctx, 'promote', 'jobs promote')
export const purge = (ctx: Context): Promise<number> => bulk(ctx, 'remove', 'queue purge')

async function bulk (ctx: Context, action: Action, command: string): Promise<number> {
  const isPurge = command === 'queue purge'
  const queue = isPurge ? ctx.args[0] : queueFlag(ctx, command)
  const state = ctx.flags.state as JobState | undefined
  const olderThan = ctx.flags['older-than'] as number | undefined
  const errorGroup = ctx.flags['error-group'] as string | undefined
  const fromStdin = !isPurge && ctx.args.length === 1 && ctx.args[0] === '-'
  const ids = isPurge ? [] : fromStdin ? await readIds(ctx) : [...ctx.args]
  if (isPurge && state === undefined) throw new UsageError('queue purge: --state is required')
  if (ids.length > 0 && (state !== undefined || olderThan !== undefined || errorGroup !== undefined)) {
    throw new UsageError(`${command}: give job ids or a selector (--state, --older-than, --error-group), not both`)
  }
  if (ids.length === 0 && state === undefined) {
    throw new UsageError(fromStdin ? `${command}: no ids on stdin` : `${command}: give job ids, or --state to select jobs`)
  }
  if (state === undefined && (olderThan !== undefined || errorGroup !== undefined)) throw new UsageError(`${command}: --older-than and --error-group need --state`)
  if (errorGroup !== undefined && state !== 'failed') throw new UsageError(`${command}: --error-group needs --state failed`)
  const selector: Selector = ids.length > 0
    ? ids
    : { state: state as JobState, ...(olderThan !== undefined && { olderThan }), ...(errorGroup !== undefined && { errorGroup }) }
  const admin = await ctx.admin()
  const words = WORDS[action]
  const out = ctx.out
  const dryRun = ctx.flags['dry-run'] === true
  const resume = ctx.flags.resume as string | undefined
  const chunkSize = ctx.flags['chunk-size'] as number
  const call = (options: BulkOptions): Promise<BulkResult> => isPurge
    ? admin.purge(queue, { state: state as JobState, ...(olderThan !== undefined && { olderThan }), ...options })
    : admin[action](queue, selector, options)
  const what = ids.length > 0 ? `${count(ids.length)} job(s) of ${queue}` : `the ${state as string} jobs of ${queue}${olderThan !== undefined ? ` (older than ${span(olderThan)})` : ''}${errorGroup !== undefined ? ` in group ${errorGroup}` : ''}`

  // How many: a state selector counts in one O(log n) call; ids are their number.
  const total = ids.length > 0 ? (resume === undefined ? ids.length : undefined) : (await call({ dryRun: true, chunkSize })).count
  if (dryRun) {
    const result = ids.length > 0 ? await call({ dryRun: true, chunkSize }) : { count: total as number, skipped: 0, cursor: null }
    out.value({ dryRun: true, action, queue, ...result }, () => {
      out.line(`Would ${words.verb} ${count(result.count)} job(s) of ${queue}${result.skipped > 0 ? ` (${count(result.skipped)} not found or not applicable)` : ''}. Nothing changed (dry run).`)
    })
    return 0
  }
  const isBulk = ids.length === 0 || fromStdin
  if (words.destructive && isBulk && ctx.flags.yes !== true && total !== 0) {
    const question = `${words.verb[0].toUpperCase()}${words.verb.slice(1)} ${total === undefined ? 'the rest of' : count(total)} ${what.replace(/^the /, '')}? [y/N] `
    if (ctx.stdin?.isTTY !== true || ctx.stderr.isTTY !== true) {
      throw new UsageError(`${command} changes ${total === undefined ? 'many' : count(total)} job(s): add --yes to confirm (or --dry-run to count)`)
    }
    const rl = createInterface({ input: ctx.stdin, output: ctx.stderr as NodeJS.WritableStream })
    const answer = await rl.question(question).finally(() => rl.close())
    if (!/^y(es)?$/i.test(answer.trim())) {
      out.note('Nothing changed.')
      return 1
    }
  }

  const progress = new Progress(ctx.stderr, words.done, total, ctx.stderr.isTTY === true ? 'bar' : ctx.flags.progress === true ? 'lines' : 'off')
  const abort = new AbortController()
  let off = ctx.onInterrupt(() => {
    // The first Ctrl-C stops after the current chunk; the listener goes, so a second one kills.
    off()
    off = () => {}
    abort.abort()
    ctx.stderr.write('\nStopping after the current chunk…\n')
  })
  let result: BulkResult
  try {
    result = await call({ chunkSize, signal: abort.signal, onProgress: p => progress.update(p.count + (ids.length > 0 ? p.skipped : 0)), ...(resume !== undefined && { cursor: resume }) })
  } finally {
    off()
    progress.finish()
  }
  const interrupted = result.cursor !== null
  out.value({ action, queue, ...result, interrupted }, () => {
    out.line(`${interrupted ? 'Interrupted: ' : ''}${words.done[0].toUpperCase()}${words.done.slice(1)} ${count(result.count)}${interrupted && total !== undefined ? ` of ${count(total)}` : ''} job(s) of ${queue}${result.skipped > 0 ? ` (${count(result.skipped)} not found or not applicable)` : ''}.`)
    for (const r of (result.results ?? []).filter(r => r.result === 'not_found' || r.result === 'skipped').slice(0, 10)) out.line(`  ${r.id}: ${r.result}`)
  })
  if (interrupted) {
    out.note(`To resume: relayq ${withFlag(ctx.argv, 'resume', result.cursor as string).map(shellQuote).join(' ')}`)
    return 1
  }
  return 0
}

/** Ids from stdin, one per line (blank lines skipped). */
async function readIds (ctx: Context): Promise<string[]> {
  const stdin = ctx.stdin
  if (stdin === undefined || stdin.isTTY === true) throw new UsageError('- reads job ids from stdin: pipe them in, one per line')
  const ids: string[] = []
  for await (const line of createInterface({ input: stdin })) if (line.trim() !== '') ids.push(line.trim())
  return ids
}
