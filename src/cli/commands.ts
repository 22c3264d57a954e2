/**
 * The commands of `relayq`: one entry each (name, summary, arguments, flags, examples, and a lazy
 * import of what runs it). Adding a command is adding an entry.
 */
import type { Admin } from '../admin.ts'
import type { Connection } from './connect.ts'
import { duration, integer, list, oneOf, type Flag, type Flags } from './flags.ts'
import type { Output, Sink } from './output.ts'

/** What a command gets. */
export interface Context {
  /** Positional arguments after the command words. */
  readonly args: readonly string[]
  /** Every flag's value (command and global), parsed. */
  readonly flags: Readonly<Record<string, any>>
  readonly out: Output
  readonly stderr: Sink
  readonly stdin: (NodeJS.ReadableStream & { isTTY?: boolean }) | undefined
  /** The command line as typed (for resume hints). */
  readonly argv: readonly string[]
  /** The storage, opened on first call. */
  connection (): Promise<Connection>
  /** An Admin over it, made on first call. */
  admin (): Promise<Admin>
  /** Calls `listener` on Ctrl-C until the returned function is called. */
  onInterrupt (listener: () => void): () => void
}

/** Exit code (0 when undefined). */
export type Run = (ctx: Context) => Promise<number | undefined>

export interface Command {
  /** Words that select it: 'jobs ls'. */
  readonly name: string
  readonly summary: string
  /** Positional arguments, for usage: '<queue> <id>'. */
  readonly args?: string
  /** Fewest and most positionals. @default [0, 0] */
  readonly arity?: readonly [number, number]
  readonly flags?: Flags
  /** At least one. */
  readonly examples: readonly string[]
  /** Does not open a storage (help-like commands). */
  readonly offline?: boolean
  readonly run: Run
}

export const STATES = ['queued', 'delayed', 'processing', 'failing', 'completed', 'failed', 'cancelled'] as const

const QUEUE: Flags = { queue: { type: 'string', short: 'q', value: 'NAME', help: 'the queue' } }
const STATE: Flag = { type: 'string', short: 's', value: 'STATE', help: `job state: ${STATES.join(', ')}`, parse: oneOf(STATES) }
const SELECT: Flags = {
  state: { ...STATE, help: 'select the jobs of this state (instead of ids)' },
  'older-than': { type: 'string', value: 'DURATION', help: 'only jobs in their state for longer than this (1h, 30m, 7d)', parse: duration },
  'error-group': { type: 'string', value: 'KEY', help: 'only failed jobs of this failure group (see relayq failures)' }
}
const BULK: Flags = {
  'dry-run': { type: 'boolean', short: 'n', help: 'count what would change; change nothing' },
  yes: { type: 'boolean', short: 'y', help: 'confirm bulk destructive work (needed without a terminal to ask on)' },
  resume: { type: 'string', value: 'CURSOR', help: 'resume an interrupted run (the cursor it printed)' },
  'chunk-size': { type: 'string', value: 'N', help: 'jobs per atomic step', default: '200', parse: integer(1, 1000) },
  progress: { type: 'boolean', help: 'print progress lines on stderr even when it is not a terminal' }
}

const lazy = <M>(load: () => Promise<M>, pick: (m: M) => Run): Run => async ctx => await pick(await load())(ctx)
const status = (): Promise<typeof import('./cmd-status.ts')> => import('./cmd-status.ts')
const jobs = (): Promise<typeof import('./cmd-jobs.ts')> => import('./cmd-jobs.ts')
const bulk = (): Promise<typeof import('./cmd-bulk.ts')> => import('./cmd-bulk.ts')

export const COMMANDS: readonly Command[] = [
  {
    name: 'status',
    summary: 'queues × states, oldest waiting job, workers, paused',
    args: '[queue...]',
    arity: [0, Infinity],
    flags: { watch: { type: 'string', short: 'w', value: 'INTERVAL', help: 'redraw every INTERVAL (2s) until Ctrl-C', parse: duration } },
    examples: ['relayq status', 'relayq status emails --watch 2s'],
    run: lazy(status, m => m.status)
  },
  {
    name: 'queues',
    summary: 'every queue with its counts',
    examples: ['relayq queues -o json'],
    run: lazy(status, m => m.queues)
  },
  {
    name: 'workers',
    summary: 'live consumers of a queue (from their heartbeats)',
    args: '<queue>',
    arity: [1, 1],
    examples: ['relayq workers emails'],
    run: lazy(status, m => m.workers)
  },
  {
    name: 'jobs ls',
    summary: 'a page of the jobs in one state, newest first',
    flags: {
      ...QUEUE,
      state: STATE,
      limit: { type: 'string', short: 'l', value: 'N', help: 'jobs per page (1-1000)', default: '50', parse: integer(1, 1000) },
      cursor: { type: 'string', short: 'c', value: 'CURSOR', help: 'the page after this cursor (printed with the previous page)' },
      order: { type: 'string', value: 'ORDER', help: 'desc (newest first) or asc', default: 'desc', parse: oneOf(['asc', 'desc']) },
      all: { type: 'boolean', short: 'a', help: 'every page (streams with -o ndjson)' }
    },
    examples: ['relayq jobs ls -q emails -s failed', 'relayq jobs ls -q emails -s failed --all -o ndjson | jq -r .id'],
    run: lazy(jobs, m => m.list)
  },
  {
    name: 'jobs show',
    summary: 'one job: payload, result, every attempt with its error and stack',
    args: '<id>',
    arity: [1, 1],
    flags: QUEUE,
    examples: ['relayq jobs show -q emails welcome-42'],
    run: lazy(jobs, m => m.show)
  },
  {
    name: 'jobs retry',
    summary: 'run failed, completed or cancelled jobs again (or failing ones now)',
    args: '[id...|-]',
    arity: [0, Infinity],
    flags: { ...QUEUE, ...SELECT, ...BULK },
    examples: ['relayq jobs retry -q emails welcome-42', 'relayq jobs retry -q emails --state failed --older-than 1h', 'relayq jobs retry -q emails --state failed --error-group 3f2a9c0d11e4b7a2 --dry-run'],
    run: lazy(bulk, m => m.retry)
  },
  {
    name: 'jobs rm',
    summary: 'delete jobs (record, history, result); running jobs are skipped',
    args: '[id...|-]',
    arity: [0, Infinity],
    flags: { ...QUEUE, ...SELECT, ...BULK },
    examples: ['relayq jobs rm -q emails welcome-42', 'relayq jobs rm -q emails --state failed --older-than 7d --yes'],
    run: lazy(bulk, m => m.remove)
  },
  {
    name: 'jobs cancel',
    summary: 'cancel waiting jobs; ask running ones to stop',
    args: '[id...|-]',
    arity: [0, Infinity],
    flags: { ...QUEUE, ...SELECT, ...BULK },
    examples: ['relayq jobs cancel -q emails welcome-42', 'relayq jobs cancel -q emails --state delayed --yes'],
    run: lazy(bulk, m => m.cancel)
  },
  {
    name: 'jobs promote',
    summary: 'make delayed jobs (or failing ones in backoff) ready now',
    args: '[id...|-]',
    arity: [0, Infinity],
    flags: { ...QUEUE, ...SELECT, ...BULK },
    examples: ['relayq jobs promote -q emails report-7', 'relayq jobs promote -q emails --state delayed'],
    run: lazy(bulk, m => m.promote)
  },
  {
    name: 'queue pause',
    summary: 'stop consumers from claiming (running jobs finish; enqueue goes on)',
    args: '<queue>',
    arity: [1, 1],
    examples: ['relayq queue pause emails'],
    run: lazy(status, m => m.pause)
  },
  {
    name: 'queue resume',
    summary: 'let consumers claim again',
    args: '<queue>',
    arity: [1, 1],
    examples: ['relayq queue resume emails'],
    run: lazy(status, m => m.resume)
  },
  {
    name: 'queue purge',
    summary: 'delete the jobs of one state',
    args: '<queue>',
    arity: [1, 1],
    flags: { state: { ...STATE, help: 'the state to purge (not processing)' }, 'older-than': SELECT['older-than'], ...BULK },
    examples: ['relayq queue purge emails --state completed --yes', 'relayq queue purge emails --state failed --older-than 7d --dry-run'],
    run: lazy(bulk, m => m.purge)
  },
  {
    name: 'failures',
    summary: 'failed jobs grouped by error (name, message, top frame)',
    args: '<queue>',
    arity: [1, 1],
    flags: { limit: { type: 'string', short: 'l', value: 'N', help: 'most groups (1-1000)', default: '20', parse: integer(1, 1000) } },
    examples: ['relayq failures emails', 'relayq failures emails -o json'],
    run: lazy(jobs, m => m.failures)
  },
  {
    name: 'explain',
    summary: 'why a job is not running (or what it is doing)',
    args: '<queue> <id>',
    arity: [2, 2],
    examples: ['relayq explain emails welcome-42'],
    run: lazy(jobs, m => m.explain)
  },
  {
    name: 'enqueue',
    summary: 'enqueue a job; with --wait, wait for its result (RPC from a shell)',
    args: '<queue> <id>',
    arity: [2, 2],
    flags: {
      data: { type: 'string', short: 'd', value: 'JSON|@FILE|@-', help: 'the payload: JSON text, @file, or @- for stdin', default: 'null' },
      delay: { type: 'string', value: 'DURATION', help: 'run it after this delay', parse: duration },
      attempts: { type: 'string', value: 'N', help: 'attempts allowed (1 + retries)', parse: integer(1, 1000) },
      'result-ttl': { type: 'string', value: 'DURATION', help: 'how long the outcome is kept', parse: duration },
      wait: { type: 'boolean', short: 'W', help: 'wait for the result and print it' },
      timeout: { type: 'string', short: 't', value: 'DURATION', help: 'longest wait with --wait', default: '30s', parse: duration }
    },
    examples: ['relayq enqueue emails welcome-42 --data \'{"to":"a@b.c"}\'', 'relayq enqueue resize img-7 --data @job.json --wait --timeout 1m'],
    run: lazy(() => import('./cmd-enqueue.ts'), m => m.enqueue)
  },
  {
    name: 'dashboard',
    summary: 'the web dashboard: queues, jobs, failures and actions in a browser (until Ctrl-C)',
    flags: {
      host: { type: 'string', value: 'HOST', help: 'address to listen on (127.0.0.1: this machine only)', default: '127.0.0.1' },
      port: { type: 'string', short: 'p', value: 'PORT', help: 'port to listen on (0: any free port)', default: '3000', parse: integer(0, 65535) },
      'read-only': { type: 'boolean', help: 'show everything, change nothing (the server refuses writes)' },
      user: { type: 'string', value: 'USER', help: 'require HTTP Basic authentication with this user (with --password)' },
      password: { type: 'string', value: 'PASSWORD', help: 'the password of --user (prefer RELAYQ_PASSWORD: a flag shows in ps)' },
      'base-path': { type: 'string', value: 'PATH', help: 'serve under this path (behind a proxy), e.g. /queues' }
    },
    examples: ['relayq dashboard --url redis://127.0.0.1:6379', 'RELAYQ_PASSWORD=s3cret relayq dashboard --host 0.0.0.0 --user ops --read-only'],
    run: lazy(() => import('./cmd-dashboard.ts'), m => m.dashboard)
  },
  {
    name: 'metrics',
    summary: 'one Prometheus scrape of the queue gauges and totals, to stdout',
    args: '[queue...]',
    arity: [0, Infinity],
    examples: ['relayq metrics', 'relayq metrics emails > relayq.prom'],
    run: lazy(() => import('./cmd-doctor.ts'), m => m.metrics)
  },
  {
    name: 'doctor',
    summary: 'find what loses jobs or keeps them from running; exit 3 on a problem',
    flags: {
      'max-clock-skew': { type: 'string', value: 'DURATION', help: 'largest clock difference with the server tolerated', default: '1s', parse: duration },
      strict: { type: 'boolean', help: 'warnings count as problems (exit 3)' }
    },
    examples: ['relayq doctor', 'relayq doctor --strict -o json'],
    run: lazy(() => import('./cmd-doctor.ts'), m => m.doctor)
  }
]

/** Flags every command takes. */
export const GLOBAL_FLAGS: Flags = {
  url: { type: 'string', short: 'u', value: 'URL', help: 'the storage: redis://[user:pass@]host:port[/db], rediss://..., postgres://..., file:///path', default: 'redis://127.0.0.1:6379' },
  prefix: { type: 'string', value: 'PREFIX', help: 'key prefix of the queues (RedisStorage keyPrefix)' },
  'key-prefix': { type: 'string', value: 'PREFIX', help: 'same as --prefix' },
  cluster: { type: 'string', value: 'HOST:PORT,...', help: 'Redis Cluster seed nodes (the URL gives credentials and TLS)', parse: list },
  'tls-ca': { type: 'string', value: 'FILE', help: 'CA certificate (PEM) to verify the server' },
  'tls-cert': { type: 'string', value: 'FILE', help: 'client certificate (PEM)' },
  'tls-key': { type: 'string', value: 'FILE', help: 'client key (PEM)' },
  'connect-timeout': { type: 'string', value: 'DURATION', help: 'longest wait for the server', default: '5s', parse: duration },
  serde: { type: 'string', value: 'SERDE', help: 'how payloads and results are encoded: json or msgpack', default: 'json', parse: oneOf(['json', 'msgpack']) },
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'table, json or ndjson', default: 'table', parse: oneOf(['table', 'json', 'ndjson']) },
  'no-color': { type: 'boolean', help: 'no colours (also NO_COLOR=1; off anyway when stdout is not a terminal)' },
  verbose: { type: 'boolean', short: 'v', help: 'stack traces on errors' },
  help: { type: 'boolean', short: 'h', help: 'help for the command', noEnv: true }
}
