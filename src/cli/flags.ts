/**
 * Flags of the command line: declared once per command (type, help, parser), read from argv
 * through node:util parseArgs, else from the environment (`--older-than` ↔ `RELAYQ_OLDER_THAN`),
 * else their default. A bad flag or value is a {@link UsageError} naming it.
 */
import { parseArgs } from 'node:util'

/** A mistake in how the command was called: exit code 2, with a pointer to `--help`. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** One flag of a command. `parse` turns the raw string into its value, or throws a message. */
export interface Flag<T = unknown> {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  /** What it does, for `--help`. */
  readonly help: string
  /** Placeholder in `--help` (`--limit N`). */
  readonly value?: string
  /** Shown in `--help`; the value used when the flag is absent (before `parse`). */
  readonly default?: string
  /** May be given several times (the values are joined with commas before `parse`). */
  readonly multiple?: boolean
  readonly parse?: (raw: string) => T
  /** Not read from the environment (`--help`). */
  readonly noEnv?: boolean
}

export type Flags = Readonly<Record<string, Flag>>

/** The environment variable of a flag: `older-than` → `RELAYQ_OLDER_THAN`. */
export function envName (flag: string): string {
  return `RELAYQ_${flag.toUpperCase().replace(/-/g, '_')}`
}

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/**
 * Parses `argv` against `flags`: positionals and the value of every flag (argv first, then its
 * environment variable, then its default; a `parse` error names the flag or variable).
 */
export function readFlags (argv: readonly string[], flags: Flags, env: Readonly<Record<string, string | undefined>>): { values: Record<string, unknown>, positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = {}
  for (const [name, flag] of Object.entries(flags)) {
    options[name] = { type: flag.type, ...(flag.short !== undefined && { short: flag.short }), ...(flag.multiple === true && { multiple: true }) }
  }
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(usageMessage(err as Error & { code?: string }))
  }
  const values: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const given = parsed.values[name]
    let raw: string | boolean | undefined
    let source = `--${name}`
    if (given !== undefined) {
      raw = Array.isArray(given) ? given.join(',') : given
    } else if (flag.noEnv !== true && env[envName(name)] !== undefined) {
      source = envName(name)
      const text = env[envName(name)] as string
      if (flag.type === 'boolean') {
        const lower = text.trim().toLowerCase()
        if (!TRUE.has(lower) && !FALSE.has(lower)) throw new UsageError(`${source}: expected true or false, got '${text}'`)
        raw = TRUE.has(lower)
      } else {
        raw = text
      }
    } else {
      raw = flag.type === 'boolean' ? false : flag.default
    }
    if (raw === undefined || typeof raw === 'boolean' || flag.parse === undefined) {
      values[name] = raw
      continue
    }
    try {
      values[name] = flag.parse(raw)
    } catch (err) {
      throw new UsageError(`${source}: ${(err as Error).message}`)
    }
  }
  return { values, positionals: parsed.positionals }
}

/** parseArgs' errors, reworded to name the flag and nothing else. */
function usageMessage (err: Error & { code?: string }): string {
  const flag = /(--[\w-]+)/.exec(err.message)?.[1] ?? /'(-[^' ,]+)/.exec(err.message)?.[1]
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown flag ${flag ?? err.message}`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `${flag ?? 'a flag'} needs a value` : `${flag ?? 'a flag'} takes no value`
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return `unexpected argument ${/'([^']+)'/.exec(err.message)?.[1] ?? ''}`.trim()
    default: return err.message
  }
}

/**
 * Splits argv into the command words (the leading positionals) and the rest, knowing which flags
 * take a value (so `--queue jobs ls` is not read as the command `jobs`).
 */
export function commandWords (argv: readonly string[], valued: ReadonlySet<string>, max: number): string[] {
  const words: string[] = []
  for (let i = 0; i < argv.length && words.length < max; i++) {
    const arg = argv[i]
    if (arg === '--') break
    if (arg.startsWith('-') && arg !== '-') {
      if (!arg.includes('=') && valued.has(arg)) i++
      continue
    }
    words.push(arg)
  }
  return words
}

// ---- value parsers: each throws a message saying what was expected ----

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `1h30m`, `2s`, `500ms`, `7d` → ms; `0` alone is allowed; a bare number is refused (which unit?). */
export function duration (raw: string): number {
  const text = raw.trim()
  if (text === '0') return 0
  const parts = text.match(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)
  if (parts === null || parts.join('') !== text) throw new Error(`expected a duration such as 500ms, 2s, 5m, 1h or 7d, got '${raw}'`)
  let ms = 0
  for (const part of parts) {
    const [, n, unit] = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/.exec(part) as RegExpExecArray
    ms += Number(n) * UNITS[unit]
  }
  return Math.round(ms)
}

/** An integer parser within [min, max]. */
export function integer (min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return raw => {
    const n = Number(raw)
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`expected an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, got '${raw}'`)
    }
    return n
  }
}

/** A parser accepting one of `choices`. */
export function oneOf<T extends string> (choices: readonly T[]): (raw: string) => T {
  return raw => {
    if (!choices.includes(raw as T)) throw new Error(`expected one of ${choices.join(', ')}, got '${raw}'`)
    return raw as T
  }
}

/** A comma-separated list of non-empty items. */
export function list (raw: string): string[] {
  const items = raw.split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (items.length === 0) throw new Error('expected a comma-separated list')
  return items
}
