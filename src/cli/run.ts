/**
 * The command line as a function: `run(argv, io)` parses, dispatches to the command, prints, and
 * answers the exit code (0 ok, 1 error, 2 usage, 3 doctor found a problem). The `relayq` binary
 * (main.ts) calls it with the process's streams; tests call it in-process too.
 */
import { Admin } from '../admin.ts'
import { MsgpackSerde } from '../serde.ts'
import type { AdminStorage } from '../storage/types.ts'
import { COMMANDS, GLOBAL_FLAGS, type Command, type Context } from './commands.ts'
import { connect, ConnectError, type Connection } from './connect.ts'
import { commandWords, envName, readFlags, UsageError, type Flags } from './flags.ts'
import { Output, type Format, type Sink } from './output.ts'

/** Where the command line reads and writes. */
export interface Io {
  readonly stdout: Sink
  readonly stderr: Sink
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean }
  readonly env: Readonly<Record<string, string | undefined>>
  /** Operate on this storage instead of opening `--url` (in-process use: tests, a MemoryStorage). */
  readonly storage?: AdminStorage
  /** Subscribes to Ctrl-C; answers the unsubscribe. @default process SIGINT */
  readonly onInterrupt?: (listener: () => void) => () => void
}

export const EXIT = { ok: 0, error: 1, usage: 2, problem: 3 } as const

const VERSION = '0.1.0'

/** Runs one command line; resolves with its exit code. Never throws. */
export async function run (argv: readonly string[], io: Io): Promise<number> {
  const stderr = io.stderr
  const fail = (message: string): void => { stderr.write(`relayq: ${message}\n`) }
  const verbose = argv.includes('--verbose') || argv.includes('-v') || /^(1|true|yes|on)$/i.test(io.env[envName('verbose')] ?? '')
  let command: Command | undefined
  let connection: Connection | undefined
  let admin: Admin | undefined
  try {
    const valued = new Set<string>()
    for (const flags of [GLOBAL_FLAGS, ...COMMANDS.map(c => c.flags ?? {})]) {
      for (const [name, flag] of Object.entries(flags)) {
        if (flag.type !== 'string') continue
        valued.add(`--${name}`)
        if (flag.short !== undefined) valued.add(`-${flag.short}`)
      }
    }
    const words = commandWords(argv, valued, 2)
    if (words[0] === 'help') return help(io, words.slice(1))
    if (argv.includes('--version')) {
      io.stdout.write(`${VERSION}\n`)
      return EXIT.ok
    }
    command = COMMANDS.find(c => c.name === words.join(' ')) ?? COMMANDS.find(c => c.name === words[0])
    if (command === undefined) {
      if (words.length === 0 || argv.includes('--help') || argv.includes('-h')) return help(io, words)
      const group = COMMANDS.filter(c => c.name.startsWith(`${words[0]} `))
      if (group.length > 0 && words.length === 1) throw new UsageError(`${words[0]}: which one? ${group.map(c => c.name.split(' ')[1]).join(', ')}`)
      throw new UsageError(`unknown command '${words.join(' ')}'`)
    }
    const flags: Flags = { ...GLOBAL_FLAGS, ...command.flags }
    const depth = command.name.split(' ').length
    // The command words are the first positionals: drop them, keep everything else in order.
    const rest = dropWords(argv, valued, depth)
    const { values, positionals } = readFlags(rest, flags, io.env)
    if (values.help === true) return help(io, command.name.split(' '))
    const [min, max] = command.arity ?? [0, 0]
    if (positionals.length < min) throw new UsageError(`${command.name}: missing ${command.args ?? 'arguments'}`)
    if (positionals.length > max) throw new UsageError(`${command.name}: unexpected argument '${positionals[max]}'`)
    const color = io.stdout.isTTY === true && values['no-color'] !== true && (io.env.NO_COLOR ?? '') === ''
    const out = new Output(io.stdout, stderr, values.output as Format, color, io.env)
    const serde = values.serde === 'msgpack' ? new MsgpackSerde() : undefined
    const open = async (): Promise<Connection> => {
      if (connection !== undefined) return connection
      if (io.storage !== undefined) {
        const storage = io.storage
        await storage.connect()
        connection = { storage, label: 'in-process storage', close: () => storage.disconnect() }
        return connection
      }
      connection = await connect(values.url as string, {
        prefix: (values.prefix ?? values['key-prefix']) as string | undefined,
        cluster: values.cluster as string[] | undefined,
        tlsCa: values['tls-ca'] as string | undefined,
        tlsCert: values['tls-cert'] as string | undefined,
        tlsKey: values['tls-key'] as string | undefined,
        connectTimeout: values['connect-timeout'] as number
      })
      return connection
    }
    const ctx: Context = {
      args: positionals,
      flags: values,
      out,
      stderr,
      stdin: io.stdin,
      argv,
      connection: open,
      admin: async () => {
        if (admin !== undefined) return admin
        const { storage } = await open()
        admin = new Admin({ storage, ...(serde !== undefined && { payloadSerde: serde, resultSerde: serde }) })
        return admin
      },
      onInterrupt: io.onInterrupt ?? (listener => {
        process.on('SIGINT', listener)
        return () => { process.off('SIGINT', listener) }
      })
    }
    return await command.run(ctx) ?? EXIT.ok
  } catch (err) {
    if (err instanceof UsageError) {
      fail(err.message)
      stderr.write(`Run 'relayq ${command === undefined ? '' : `${command.name} `}--help' for usage.\n`)
      return EXIT.usage
    }
    fail(message(err))
    if (verbose) stderr.write(`${(err as Error)?.stack ?? String(err)}\n`)
    return EXIT.error
  } finally {
    // Admin releases the reference it took; the connection is ours to close.
    await admin?.close().catch(() => {})
    await connection?.close().catch(() => {})
  }
}

/** One line saying what went wrong. */
function message (err: unknown): string {
  if (err instanceof ConnectError) return err.message
  const e = err as (Error & { code?: string }) | undefined
  if (e?.name === 'StorageError') {
    let cause = e.cause as Error | undefined
    while (cause?.cause instanceof Error) cause = cause.cause
    return `${e.message}${cause !== undefined ? `: ${cause.message}` : ''}`
  }
  return (e?.message ?? String(err)).split('\n')[0]
}

/** argv without its first `depth` positionals (the command words). */
function dropWords (argv: readonly string[], valued: ReadonlySet<string>, depth: number): string[] {
  const rest: string[] = []
  let dropped = 0
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      rest.push(...argv.slice(i))
      break
    }
    if (arg.startsWith('-') && arg !== '-') {
      rest.push(arg)
      if (!arg.includes('=') && valued.has(arg) && i + 1 < argv.length) rest.push(argv[++i])
      continue
    }
    if (dropped < depth) dropped++
    else rest.push(arg)
  }
  return rest
}

/** `relayq --help`, `relayq help jobs`, `relayq jobs retry --help`. */
function help (io: Io, words: readonly string[]): number {
  const lines: string[] = []
  const name = words.join(' ')
  const command = COMMANDS.find(c => c.name === name)
  const flagLines = (flags: Flags): string[] => Object.entries(flags).map(([key, f]) => {
    const left = `  ${f.short !== undefined ? `-${f.short}, ` : '    '}--${key}${f.value !== undefined ? ` ${f.value}` : ''}`
    return `${left.padEnd(36)} ${f.help}${f.default !== undefined ? ` (default ${f.default})` : ''}${f.noEnv === true ? '' : ` [${envName(key)}]`}`
  })
  if (command !== undefined) {
    lines.push(`relayq ${command.name}${command.args !== undefined ? ` ${command.args}` : ''} [flags]`, '', `  ${command.summary}`, '')
    if (command.flags !== undefined) lines.push('Flags:', ...flagLines(command.flags), '')
    lines.push('Examples:', ...command.examples.map(e => `  ${e}`), '', 'Global flags:', ...flagLines(GLOBAL_FLAGS))
  } else {
    const group = COMMANDS.filter(c => words.length > 0 && c.name.startsWith(`${words[0]} `))
    if (words.length > 0 && group.length === 0) {
      io.stderr.write(`relayq: unknown command '${name}'\nRun 'relayq --help' for usage.\n`)
      return EXIT.usage
    }
    const shown = group.length > 0 ? group : COMMANDS
    const width = Math.max(...shown.map(c => c.name.length + (c.args?.length ?? 0) + 1))
    lines.push('relayq: operate relayq queues from a terminal', '', 'Usage: relayq <command> [arguments] [flags]', '', 'Commands:')
    for (const c of shown) lines.push(`  ${`${c.name}${c.args !== undefined ? ` ${c.args}` : ''}`.padEnd(width + 2)}${c.summary}`)
    lines.push('', 'Global flags (every flag also reads RELAYQ_<FLAG>, e.g. --older-than ← RELAYQ_OLDER_THAN):', ...flagLines(GLOBAL_FLAGS))
    lines.push('', 'Examples:', '  RELAYQ_URL=redis://10.0.0.5:6379 relayq status', '  relayq jobs ls -q emails -s failed', '  relayq jobs retry -q emails --state failed --older-than 1h --yes')
    lines.push('', 'Exit codes: 0 ok, 1 error, 2 usage, 3 doctor found a problem.', 'Run \'relayq <command> --help\' for the flags and an example of each command.')
  }
  io.stdout.write(`${lines.join('\n')}\n`)
  return EXIT.ok
}
