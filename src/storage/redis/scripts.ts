import { readFileSync } from 'node:fs'
import type { Cluster, Redis } from 'iovalkey'
import { luaConstants } from './codec.ts'
import { keyNames, linkScript } from './linker.ts'

/**
 * The Lua scripts of src/scripts/, one per atomic operation, each linked (linker.ts) with the
 * helpers of _lib.lua and the format constants of codec.ts it uses, its keys bound by name.
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

let loaded: { sources: Record<ScriptName, string>, keys: Record<ScriptName, readonly string[]> } | undefined

function load (): NonNullable<typeof loaded> {
  if (loaded === undefined) {
    const constants = luaConstants()
    const lib = readFileSync(new URL('_lib.lua', DIR), 'utf8')
    const sources: Partial<Record<ScriptName, string>> = {}
    const keys: Partial<Record<ScriptName, readonly string[]>> = {}
    for (const name of NAMES) {
      const body = readFileSync(new URL(`${name}.lua`, DIR), 'utf8')
      keys[name] = keyNames(name, body)
      try {
        sources[name] = linkScript(body, keys[name], lib, constants)
      } catch (err) {
        throw new Error(`src/scripts/${name}.lua: ${(err as Error).message}`)
      }
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
export type ScriptCall = (keys: ReadonlyArray<string | Buffer>, args: ReadonlyArray<string | number | Buffer>) => Promise<any>

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
