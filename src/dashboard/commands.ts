/**
 * Every dashboard action written as the equivalent `relayq` command line (issue 11's CLI), so an
 * operator can script what they clicked. The connection is left to `RELAYQ_URL`: a URL may hold a
 * password, and none is ever sent to the page.
 */
import type { AdminAction } from '../storage/types.ts'

/** What an action targets: ids, or the jobs of a state. */
export type Target = { ids: readonly string[] } | { state: string, olderThan?: number, errorGroup?: string }

const VERBS: Readonly<Record<AdminAction, string>> = { retry: 'retry', remove: 'rm', cancel: 'cancel', promote: 'promote' }

/** Quotes a word for a POSIX shell (single quotes unless it is plainly safe). */
export function shellQuote (word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`
}

/** A duration in ms as the CLI writes it: `7d`, `1h`, `30m`, `90s` or `1500ms`. */
export function formatFlagDuration (ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

function selectorFlags (target: Target): string[] {
  if ('ids' in target) return ['--', ...target.ids.map(shellQuote)]
  return [
    '--state', shellQuote(target.state),
    ...(target.olderThan !== undefined ? ['--older-than', formatFlagDuration(target.olderThan)] : []),
    ...(target.errorGroup !== undefined ? ['--error-group', shellQuote(target.errorGroup)] : [])
  ]
}

/** `relayq jobs retry|rm|cancel|promote --queue Q ...` (`--yes` for work by selector, which the CLI requires). */
export function jobsCommand (action: AdminAction, queue: string, target: Target, dryRun = false): string {
  const bulk = !('ids' in target)
  const words = ['relayq', 'jobs', VERBS[action], '--queue', shellQuote(queue), ...(dryRun ? ['--dry-run'] : bulk ? ['--yes'] : [])]
  return [...words, ...selectorFlags(target)].join(' ')
}

/** `relayq queue pause|resume Q`. */
export function queueCommand (verb: 'pause' | 'resume', queue: string): string {
  return `relayq queue ${verb} ${shellQuote(queue)}`
}

/** `relayq queue purge Q --state S [--older-than D]`. */
export function purgeCommand (queue: string, state: string, olderThan: number | undefined, dryRun = false): string {
  return ['relayq', 'queue', 'purge', shellQuote(queue), '--state', shellQuote(state),
    ...(olderThan !== undefined ? ['--older-than', formatFlagDuration(olderThan)] : []), dryRun ? '--dry-run' : '--yes'].join(' ')
}
