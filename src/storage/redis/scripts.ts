import { readFileSync } from 'node:fs'
import type { Cluster, Redis } from 'iovalkey'
import { luaConstants } from './codec.ts'

/**
 * The Lua scripts of src/scripts/, one per atomic operation, each linked with the definitions it
 * uses: the format constants of codec.ts, its keys bound by name (`K.<name>`, from the `-- KEYS`
 * lines of its header: the order of KEYS), and the helpers of _lib.lua.
 * They are registered on a client with iovalkey's `defineCommand`: it sends EVALSHA and falls
 * back to EVAL on NOSCRIPT, so scripts survive SCRIPT FLUSH, restarts and failovers.
 */
const NAMES = [
  'enqueue', 'claim', 'settle', 'extend', 'cancel', 'status', 'ttl', 'recover', 'lock', 'unlock',
  'overview', 'list', 'job', 'apply', 'pause', 'retention', 'groups', 'heartbeat', 'workers'
] as const
export type ScriptName = typeof NAMES[number]

// The same relative path works from src/storage/redis/ (tsx) and dist/storage/redis/ (built): the
// .lua files ship in the package under src/scripts/ with no copy step.
const DIR = new URL('../../../src/scripts/', import.meta.url)

interface Definition { name: string, text: string }

let loaded: { sources: Record<ScriptName, string>, keys: Record<ScriptName, readonly string[]> } | undefined

/** The top-level definitions of a Lua text (`local function f` / `local NAME =`), in order. */
function definitions (lib: string): Definition[] {
  const defs: Definition[] = []
  // A definition starts at a line beginning with `local` and runs to the next such line; the
  // comment lines just above a definition belong to it.
  const starts = [...lib.matchAll(/^(?:--[^\n]*\n)*local (?:function )?([A-Za-z_][A-Za-z0-9_]*)/gm)]
  for (let i = 0; i < starts.length; i++) {
    const end = i + 1 < starts.length ? starts[i + 1].index : lib.length
    defs.push({ name: starts[i][1], text: lib.slice(starts[i].index, end) })
  }
  return defs
}

/** The key names a script's header lists on its `-- KEYS` lines, in order. */
function keyNames (name: string, body: string): string[] {
  const names = [...body.matchAll(/^-- KEYS (.+)$/gm)].flatMap(m => m[1].trim().split(/\s+/))
  if (names.length === 0) throw new Error(`src/scripts/${name}.lua lists no KEYS`)
  return names
}

/**
 * `body` preceded by the definitions it uses, directly or through other definitions, in their
 * order. Each call of a script runs its whole text, so unused helpers would cost closures every
 * call (measured: ~4.5 µs per call for the full library).
 */
function link (body: string, defs: Definition[]): string {
  const used = new Set<string>()
  const code = (text: string): string => text.replace(/--[^\n]*/g, '') // a name in a comment is no use
  const uses = (text: string, name: string): boolean => new RegExp(`\\b${name}\\b`).test(code(text))
  let grew = true
  while (grew) {
    grew = false
    for (const def of defs) {
      if (used.has(def.name)) continue
      if (uses(body, def.name) || defs.some(d => used.has(d.name) && d !== def && uses(d.text, def.name))) {
        used.add(def.name)
        grew = true
      }
    }
  }
  const linked = defs.filter(d => used.has(d.name)).map(d => d.text).join('') + body
  // A constant a script uses but nobody defines would fail only when that line runs.
  for (const [name] of code(linked).matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g)) {
    if (!new RegExp(`^local ${name}\\b`, 'm').test(linked)) throw new Error(`Lua constant ${name} is not defined`)
  }
  return linked
}

function load (): NonNullable<typeof loaded> {
  if (loaded === undefined) {
    const constants = definitions(luaConstants())
    const lib = definitions(readFileSync(new URL('_lib.lua', DIR), 'utf8'))
    const sources: Partial<Record<ScriptName, string>> = {}
    const keys: Partial<Record<ScriptName, readonly string[]>> = {}
    for (const name of NAMES) {
      const body = readFileSync(new URL(`${name}.lua`, DIR), 'utf8')
      const names = keyNames(name, body)
      // K comes after the constants and before the helpers, which see it as an upvalue.
      const bind: Definition = { name: 'K', text: `local K = { ${names.map((key, i) => `${key} = KEYS[${i + 1}]`).join(', ')} }\n` }
      sources[name] = link(body, [...constants, bind, ...lib])
      keys[name] = names
    }
    loaded = { sources: sources as Record<ScriptName, string>, keys: keys as Record<ScriptName, readonly string[]> }
  }
  return loaded
}

/** The names of the keys each script takes, in KEYS order. */
export function scriptKeys (name: ScriptName): readonly string[] {
  return load().keys[name]
}

/** A reply element: bulk strings arrive as Buffers with the `Buffer` variants, integers as numbers. */
export type Reply = Buffer | number | null | Reply[]

/** Calls a script: `keys` then `args`; the `Buffer` variant keeps binary data intact. */
export type ScriptCall = (keys: readonly string[], args: ReadonlyArray<string | number | Buffer>) => Promise<any>

/** The scripts as callable functions on one client. */
export type Scripts = Record<ScriptName, ScriptCall> & Record<`${ScriptName}Buffer`, ScriptCall>

/** Command names on the client: prefixed, so they cannot clash with a user's own commands. */
const commandName = (name: ScriptName): string => `relayq_${name}`

/**
 * Registers the scripts on `client` (idempotent) and returns callers for them; every call's
 * promise goes through `track` (by default, as it is).
 */
export function defineScripts (client: Redis | Cluster, track: <T>(call: Promise<T>) => Promise<T> = call => call): Scripts {
  const { sources } = load()
  const target = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const scripts: Record<string, ScriptCall> = {}
  for (const name of NAMES) {
    const command = commandName(name)
    if (typeof target[command] !== 'function') client.defineCommand(command, { lua: sources[name] })
    const call = target[command]
    const callBuffer = target[`${command}Buffer`]
    // Without a fixed key count, iovalkey expects it as the first argument.
    scripts[name] = (keys, args) => track(call.call(client, keys.length, ...keys, ...args))
    scripts[`${name}Buffer`] = (keys, args) => track(callBuffer.call(client, keys.length, ...keys, ...args))
  }
  return scripts as Scripts
}
