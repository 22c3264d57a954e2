import { readFileSync } from 'node:fs'
import type { Cluster, Redis } from 'iovalkey'

/**
 * The Lua scripts of src/scripts/, one per atomic operation, each prefixed with the helpers of
 * _lib.lua it uses.
 * They are registered on a client with iovalkey's `defineCommand`: it sends EVALSHA and falls
 * back to EVAL on NOSCRIPT, so scripts survive SCRIPT FLUSH, restarts and failovers.
 */
const NAMES = ['enqueue', 'claim', 'settle', 'extend', 'cancel', 'status', 'ttl', 'recover', 'reap', 'lock', 'unlock', 'counts'] as const
export type ScriptName = typeof NAMES[number]

// The same relative path works from src/storage/redis/ (tsx) and dist/storage/redis/ (built): the .lua files
// ship in the package under src/scripts/ with no copy step.
const DIR = new URL('../../../src/scripts/', import.meta.url)

let sources: Record<ScriptName, string> | undefined

/** The top-level definitions of _lib.lua (`local function f` / `local NAME =`), in file order. */
function definitions (lib: string): Array<{ name: string, text: string }> {
  const defs: Array<{ name: string, text: string }> = []
  // A definition starts at a line beginning with `local` and runs to the next such line; the
  // comment lines just above a definition belong to it.
  const starts = [...lib.matchAll(/^(?:--[^\n]*\n)*local (?:function )?([A-Za-z_][A-Za-z0-9_]*)/gm)]
  for (let i = 0; i < starts.length; i++) {
    const end = i + 1 < starts.length ? starts[i + 1].index : lib.length
    defs.push({ name: starts[i][1], text: lib.slice(starts[i].index, end) })
  }
  return defs
}

/**
 * `body` preceded by the _lib.lua definitions it uses, directly or through other definitions.
 * Each call of a script runs its whole text, so unused helpers would cost closures every call
 * (measured: ~4.5 µs per call for the full library).
 */
function link (body: string, defs: Array<{ name: string, text: string }>): string {
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
  return defs.filter(d => used.has(d.name)).map(d => d.text).join('') + body
}

function load (): Record<ScriptName, string> {
  if (sources === undefined) {
    const defs = definitions(readFileSync(new URL('_lib.lua', DIR), 'utf8'))
    const loaded: Partial<Record<ScriptName, string>> = {}
    for (const name of NAMES) loaded[name] = link(readFileSync(new URL(`${name}.lua`, DIR), 'utf8'), defs)
    sources = loaded as Record<ScriptName, string>
  }
  return sources
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
  const lua = load()
  const target = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const scripts: Record<string, ScriptCall> = {}
  for (const name of NAMES) {
    const command = commandName(name)
    if (typeof target[command] !== 'function') client.defineCommand(command, { lua: lua[name] })
    const call = target[command]
    const callBuffer = target[`${command}Buffer`]
    // Without a fixed key count, iovalkey expects it as the first argument.
    scripts[name] = (keys, args) => track(call.call(client, keys.length, ...keys, ...args))
    scripts[`${name}Buffer`] = (keys, args) => track(callBuffer.call(client, keys.length, ...keys, ...args))
  }
  return scripts as Scripts
}
