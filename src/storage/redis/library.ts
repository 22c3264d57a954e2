/**
 * Links every script into one Redis Functions library (`FUNCTION LOAD`, called by `FCALL`):
 * the format constants and the helpers of _lib.lua are defined once, at library level, when the
 * library loads, instead of as closures built on every EVALSHA. A function receives its keys and
 * arguments as parameters (no KEYS / ARGV globals): a helper naming a key (`K.<name>`) reads a
 * library-level local `K_<name>`, and one naming an index (`IK[st]`) a library-level table, that
 * each function sets on entry from its own keys (Redis runs one function at a time), only for the
 * names its helpers use. The script bodies themselves get `KEYS[i]` as in linker.ts.
 * Globals cost more in a function than in a script: a function's global table is empty and
 * reaches Redis's API (`redis`, `string`, `struct`...) through a metatable, a second lookup on
 * every use. So each library function a script uses (`string.sub`, `redis.call`, `tonumber`...)
 * is read once into a library-level local, on the first call (at load time the API is not there).
 */
import { createHash } from 'node:crypto'
import { code, definitions, foldConstants, foldKeys, INDEXES, inlinable, inline, outsideStrings, reachable } from './linker.ts'

/** One script of the library. */
export interface LibraryScript {
  readonly name: string
  readonly body: string
  /** Its key names, in KEYS order. */
  readonly keys: readonly string[]
  /** It writes nothing: registered with the `no-writes` flag. */
  readonly readOnly: boolean
}

/** A linked library: its name, its source for `FUNCTION LOAD`, and the function name of each script. */
export interface Library {
  readonly name: string
  readonly source: string
  readonly functions: Readonly<Record<string, string>>
}

/** The placeholder for the library's name while its hash is computed. */
const PLACEHOLDER = 'relayq_libname_'

/** Globals read into locals (see above): library functions, and bare functions. */
const GLOBALS = /(?<![.:\w])(?:(string|struct|bit|math|table|redis)\.([a-z_]+)\b|(tonumber|unpack|pairs|ipairs)\b(?!\s*=))/g

/** `text` with its globals (see above) as locals, noted in `found` (local name -> global). */
function localGlobals (text: string, found: Map<string, string>): string {
  return outsideStrings(text, part => part.replace(GLOBALS, (whole: string, lib?: string, fn?: string, bare?: string) => {
    const name = bare === undefined ? `G_${lib}_${fn}` : `G_${bare}`
    found.set(name, whole)
    return name
  }))
}

/** Lua's limit on the local variables of one function, here the library's main chunk. */
const MAX_LOCALS = 200

/**
 * The library of `scripts`, linked with `lib` (_lib.lua) and `constants` (codec.ts). Its name,
 * `relayq_<8 hex digits of the SHA-1 of its source>`, changes with any change of a script: two
 * relayq versions on one server each call their own.
 */
export function linkLibrary (scripts: readonly LibraryScript[], lib: string, constants: string): Library {
  const consts = definitions(constants)
  const prepare = (text: string): string => foldConstants(consts, code(text))
  let defs = definitions(lib).map(def => ({ name: def.name, text: prepare(def.text) }))
  const helpers = inlinable(defs)
  const globals = new Map<string, string>()
  // Only functions: a value computed at load time cannot read a global (none is there yet).
  const locals = (text: string): string => {
    const keyed = outsideStrings(text, part => part.replace(/\bK\.([a-z]+)\b/g, 'K_$1'))
    return /^\s*local function /.test(keyed) ? localGlobals(keyed, globals) : keyed
  }
  defs = defs.filter(def => !helpers.has(def.name)).map(def => ({ name: def.name, text: locals(inline(helpers, def.text)) }))
  const tables = consts.filter(def => !/^local [A-Z0-9_]+ = (-?\d|')/.test(def.text)).map(def => ({ name: def.name, text: locals(prepare(def.text)) }))
  const all = [...tables, ...defs]

  const used = new Set<string>()
  const keyLocals = new Set<string>()
  const functions: string[] = []
  for (const script of scripts) {
    const body = localGlobals(inline(helpers, prepare(script.body)), globals)
    const reached = reachable(body, all)
    for (const def of reached) used.add(def.name)
    const helperCode = reached.map(def => def.text).join('')
    const binds: string[] = ['if not G_bound then G_bind() end']
    for (const key of new Set([...helperCode.matchAll(/\bK_([a-z]+)\b/g)].map(m => m[1]))) {
      const i = script.keys.indexOf(key)
      if (i < 0) throw new Error(`src/scripts/${script.name}.lua: Lua key K.${key} is not in the script's KEYS`)
      keyLocals.add(key)
      binds.push(`K_${key} = KEYS[${i + 1}]`)
    }
    if (/\bIK\b/.test(helperCode + body)) {
      // Every letter, so none is left from another call: an index the script does not list is nil.
      for (const [letter, key] of Object.entries(INDEXES)) {
        const i = script.keys.indexOf(key)
        binds.push(`IK.${letter} = ${i < 0 ? 'nil' : `KEYS[${i + 1}]`}`)
      }
    }
    const callback = `function (KEYS, ARGV)\n${binds.map(b => `${b}\n`).join('')}${foldKeys(script.keys, body)}\nend`
    const name = `'${PLACEHOLDER}_${script.name}'`
    functions.push(script.readOnly
      ? `redis.register_function{function_name = ${name}, callback = ${callback}, flags = { 'no-writes' }}\n`
      : `redis.register_function(${name}, ${callback})\n`)
  }
  const kept = all.filter(def => used.has(def.name))
  const top = kept.length + keyLocals.size + globals.size + 3
  if (top > MAX_LOCALS) throw new Error(`The Lua library has ${top} top-level definitions, more than Lua's ${MAX_LOCALS}`)
  const keys = [...keyLocals].map(key => `local K_${key}\n`).join('')
  const bind = [...globals.keys()].map(name => `local ${name}\n`).join('') + 'local G_bound\nlocal function G_bind ()\n' +
    [...globals].map(([name, global]) => `${name} = ${global}\n`).join('') + 'G_bound = true\nend\n'
  const text = `#!lua name=${PLACEHOLDER}\nlocal IK = {}\n${keys}${bind}${kept.map(def => def.text).join('')}${functions.join('')}`
  const name = `relayq_${createHash('sha1').update(text).digest('hex').slice(0, 8)}`
  return {
    name,
    source: text.replaceAll(PLACEHOLDER, name),
    functions: Object.fromEntries(scripts.map(s => [s.name, `${name}_${s.name}`]))
  }
}
