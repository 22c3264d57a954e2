import { readFileSync } from 'node:fs'
import type { Cluster, Redis } from 'iovalkey'

/**
 * The Lua scripts of src/scripts/, one per atomic operation, each prefixed with _lib.lua.
 * They are registered on a client with iovalkey's `defineCommand`: it sends EVALSHA and falls
 * back to EVAL on NOSCRIPT, so scripts survive SCRIPT FLUSH, restarts and failovers.
 */
const NAMES = ['enqueue', 'claim', 'settle', 'extend', 'cancel', 'status', 'ttl', 'recover', 'reap', 'lock', 'unlock', 'counts'] as const
export type ScriptName = typeof NAMES[number]

// The same relative path works from src/storage/ (tsx) and dist/storage/ (built): the .lua files
// ship in the package under src/scripts/ with no copy step.
const DIR = new URL('../../src/scripts/', import.meta.url)

let sources: Record<ScriptName, string> | undefined

function load (): Record<ScriptName, string> {
  if (sources === undefined) {
    const lib = readFileSync(new URL('_lib.lua', DIR), 'utf8')
    const loaded: Partial<Record<ScriptName, string>> = {}
    for (const name of NAMES) loaded[name] = `${lib}\n${readFileSync(new URL(`${name}.lua`, DIR), 'utf8')}`
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

/** Registers the scripts on `client` (idempotent) and returns callers for them. */
export function defineScripts (client: Redis | Cluster): Scripts {
  const lua = load()
  const target = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const scripts: Record<string, ScriptCall> = {}
  for (const name of NAMES) {
    const command = commandName(name)
    if (typeof target[command] !== 'function') client.defineCommand(command, { lua: lua[name] })
    const call = target[command]
    const callBuffer = target[`${command}Buffer`]
    // Without a fixed key count, iovalkey expects it as the first argument.
    scripts[name] = (keys, args) => call.call(client, keys.length, ...keys, ...args)
    scripts[`${name}Buffer`] = (keys, args) => callBuffer.call(client, keys.length, ...keys, ...args)
  }
  return scripts as Scripts
}
