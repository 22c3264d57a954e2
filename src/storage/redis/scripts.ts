import { readFileSync } from 'node:fs'
import { Command, type Cluster, type Redis } from 'iovalkey'
import { luaConstants } from './codec.ts'
import { FunctionLoader, functionNotFound } from './functions.ts'
import { linkLibrary, type Library } from './library.ts'
import { keyNames, linkScript } from './linker.ts'

/**
 * The Lua scripts of src/scripts/, one per atomic operation. They run as the functions of one
 * Redis Functions library (library.ts, called by FCALL; loaded by functions.ts, again wherever it
 * went missing), or, where the server refuses `FUNCTION LOAD`, each linked (linker.ts) with the
 * helpers of _lib.lua and the format constants of codec.ts it uses and registered with iovalkey's
 * `defineCommand`: it sends EVALSHA and falls back to EVAL on NOSCRIPT. Either way they survive
 * FUNCTION FLUSH, SCRIPT FLUSH, restarts and failovers.
 */
const NAMES = [
  'enqueue', 'claim', 'settle', 'extend', 'cancel', 'status', 'ttl', 'recover', 'lock', 'unlock',
  'overview', 'list', 'job', 'apply', 'pause', 'retention', 'groups', 'heartbeat', 'workers'
] as const
export type ScriptName = typeof NAMES[number]

/** The scripts that write nothing: their functions carry the `no-writes` flag. */
const READ_ONLY = new Set<ScriptName>(['status', 'overview', 'list', 'job', 'groups', 'workers'])

// The same relative path works from src/storage/redis/ (tsx) and dist/storage/redis/ (built): the
// .lua files ship in the package under src/scripts/ with no copy step.
const DIR = new URL('../../../src/scripts/', import.meta.url)

let loaded: { lib: string, constants: string, bodies: Record<ScriptName, string>, keys: Record<ScriptName, readonly string[]>, library: Library } | undefined
let linked: Record<ScriptName, string> | undefined

function load (): NonNullable<typeof loaded> {
  if (loaded === undefined) {
    const bodies: Partial<Record<ScriptName, string>> = {}
    const keys: Partial<Record<ScriptName, readonly string[]>> = {}
    const scripts: Array<{ name: ScriptName, body: string, keys: readonly string[], readOnly: boolean }> = []
    for (const name of NAMES) {
      const body = readFileSync(new URL(`${name}.lua`, DIR), 'utf8')
      bodies[name] = body
      keys[name] = keyNames(name, body)
      scripts.push({ name, body, keys: keys[name], readOnly: READ_ONLY.has(name) })
    }
    const lib = readFileSync(new URL('_lib.lua', DIR), 'utf8')
    const constants = luaConstants()
    loaded = {
      lib,
      constants,
      bodies: bodies as Record<ScriptName, string>,
      keys: keys as Record<ScriptName, readonly string[]>,
      library: linkLibrary(scripts, lib, constants)
    }
  }
  return loaded
}

/**
 * Each script linked on its own, for servers that refuse `FUNCTION LOAD`: made on first need, as
 * most processes never need them (linking is most of a RedisStorage's start-up work).
 */
function scriptSources (): Record<ScriptName, string> {
  if (linked === undefined) {
    const { lib, constants, bodies, keys } = load()
    const sources: Partial<Record<ScriptName, string>> = {}
    for (const name of NAMES) {
      try {
        sources[name] = linkScript(bodies[name], keys[name], lib, constants)
      } catch (err) {
        throw new Error(`src/scripts/${name}.lua: ${(err as Error).message}`)
      }
    }
    linked = sources as Record<ScriptName, string>
  }
  return linked
}

/** The Functions library of all the scripts. */
export function scriptLibrary (): Library {
  return load().library
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

/** How many times a call is sent again after "Function not found" (each time after loading the library). */
const RELOADS = 3

/**
 * Registers the scripts on `client` (idempotent) and returns callers for them, and the loader of
 * their library (to load when the client connects; else the first call loads it). Every call's
 * promise goes through `track` (by default, as it is).
 */
export function defineScripts (client: Redis | Cluster, track: <T>(call: Promise<T>) => Promise<T> = call => call): { scripts: Scripts, functions: FunctionLoader } {
  const { library } = load()
  const functions = new FunctionLoader(client, library)
  const target = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const keyPrefix = (client.options as { keyPrefix?: string }).keyPrefix
  const scripts: Record<string, ScriptCall> = {}
  for (const name of NAMES) {
    const command = commandName(name)
    const evalsha = (encoding: 'utf8' | null): (...args: unknown[]) => Promise<unknown> => {
      if (typeof target[command] !== 'function') client.defineCommand(command, { lua: scriptSources()[name] })
      return target[encoding === null ? `${command}Buffer` : command]
    }
    const fn = library.functions[name]
    const call = (encoding: 'utf8' | null, keys: ReadonlyArray<string | Buffer>, args: ReadonlyArray<string | number | Buffer>, reloads: number): Promise<unknown> => {
      const mode = functions.mode
      if (mode === 'functions') {
        const sent = client.sendCommand(new Command('fcall', [fn, keys.length, ...keys, ...args], { replyEncoding: encoding, keyPrefix })) as Promise<unknown>
        // Loaded again, the call goes after the load: behind calls sent since (see claims.ts, `activated`).
        if (reloads === 0) return sent
        return sent.catch(async (err: unknown) => {
          if (!functionNotFound(err)) throw err
          await functions.load()
          return await call(encoding, keys, args, reloads - 1)
        })
      }
      // Without a fixed key count, iovalkey expects it as the first argument.
      if (mode === 'scripts') return evalsha(encoding).call(client, keys.length, ...keys, ...args)
      return functions.load().then(() => call(encoding, keys, args, reloads))
    }
    scripts[name] = (keys, args) => track(call('utf8', keys, args, RELOADS))
    scripts[`${name}Buffer`] = (keys, args) => track(call(null, keys, args, RELOADS))
  }
  return { scripts: scripts as Scripts, functions }
}
