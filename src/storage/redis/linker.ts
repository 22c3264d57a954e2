/**
 * Builds each Lua script from its file, src/scripts/_lib.lua and the format constants of
 * codec.ts. Redis runs a script's whole text on every call, so what reads well in the sources is
 * resolved here, once, instead of at run time:
 * - constants (`R_ATTEMPTS`, `S_FORMAT`...) become their values;
 * - keys named `K.<name>` become `KEYS[i]`, in the order of the script's `-- KEYS` lines, and
 *   `IK[st]` (the index of a state, by its letter) a table of the index keys it lists;
 * - one-line helpers (`local function f (a) return <expression> end`) are inlined;
 * - of the library, only what the script uses, directly or not, is kept.
 * Each top-level helper costs a closure on every call, and each call of a small helper as much
 * as its body (measured on settle.lua: 46 helpers and a table of 22 keys cost ~10 µs per call).
 */

export interface Definition { readonly name: string, readonly text: string }

/** State letters and the names of their index keys. */
export const INDEXES: Record<string, string> = {
  q: 'queued', d: 'delayed', p: 'processing', f: 'failing', c: 'completed', e: 'failed', x: 'cancelled'
}

/** The top-level definitions of a Lua text (`local function f` / `local NAME =`), in order. */
export function definitions (text: string): Definition[] {
  const defs: Definition[] = []
  // A definition starts at a line beginning with `local` and runs to the next such line; the
  // comment lines just above a definition belong to it.
  const starts = [...text.matchAll(/^(?:--[^\n]*\n)*local (?:function )?([A-Za-z_][A-Za-z0-9_]*)/gm)]
  for (let i = 0; i < starts.length; i++) {
    const end = i + 1 < starts.length ? starts[i + 1].index : text.length
    defs.push({ name: starts[i][1], text: text.slice(starts[i].index, end) })
  }
  return defs
}

/** The key names a script's header lists on its `-- KEYS` lines, in order. */
export function keyNames (script: string, body: string): string[] {
  const names = [...body.matchAll(/^-- KEYS (.+)$/gm)].flatMap(m => m[1].trim().split(/\s+/))
  if (names.length === 0) throw new Error(`src/scripts/${script}.lua lists no KEYS`)
  return names
}

/** Lua code without its comments (a name in a comment is no use). */
export function code (text: string): string {
  return text.replace(/--[^\n]*/g, '')
}

/** Calls `visit` for each stretch of `text` outside string literals; returns the rejoined text. */
export function outsideStrings (text: string, visit: (part: string) => string): string {
  let out = ''
  let from = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i)
      out += visit(text.slice(from, i)) + text.slice(i, end < 0 ? text.length : end)
      i = end < 0 ? text.length : end - 1
      from = i + 1
    } else if (c === '\'' || c === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1
      out += visit(text.slice(from, i)) + text.slice(i, j + 1)
      i = j
      from = j + 1
    }
  }
  return out + visit(text.slice(from))
}

/** Replaces each constant that is a number or a quoted string by its value. */
export function foldConstants (constants: Definition[], text: string): string {
  const values = new Map<string, string>()
  for (const def of constants) {
    const literal = /^local [A-Z0-9_]+ = (-?\d+(?:\.\d+)?|'[^'\\]*')\n?$/.exec(def.text)
    if (literal !== null) values.set(def.name, literal[1])
  }
  return outsideStrings(text, part => part.replace(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g, name => values.get(name) ?? name))
}

/** Replaces `K.<name>` by `KEYS[i]`; a name the script does not list stays (and fails the check in `link`). */
export function foldKeys (keys: readonly string[], text: string): string {
  return outsideStrings(text, part => part.replace(/\bK\.([a-z]+)\b/g, (whole, name: string) => {
    const i = keys.indexOf(name)
    return i < 0 ? whole : `KEYS[${i + 1}]`
  }))
}

export interface Inline { readonly params: string[], readonly expression: string }

/** The one-line helpers of `defs` that can be inlined. */
export function inlinable (defs: Definition[]): Map<string, Inline> {
  const found = new Map<string, Inline>()
  for (const def of defs) {
    const m = /^local function ([a-z_][a-z0-9_]*) \(([a-z0-9_, ]*)\) return (.+) end\n*$/.exec(code(def.text).trim() + '\n')
    if (m !== null) found.set(m[1], { params: m[2].split(',').map(p => p.trim()).filter(p => p !== ''), expression: m[3] })
  }
  return found
}

/** The arguments of a call whose `(` is at `open`, and the index of its `)`. */
function callArguments (text: string, open: number): { args: string[], close: number } {
  const args: string[] = []
  let depth = 0
  let from = open + 1
  for (let i = open; i < text.length; i++) {
    const c = text[i]
    if (c === '\'' || c === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1
      i = j
    } else if (c === '(' || c === '{' || c === '[') {
      depth++
    } else if (c === ')' || c === '}' || c === ']') {
      depth--
      if (depth === 0) {
        if (text.slice(from, i).trim() !== '') args.push(text.slice(from, i).trim())
        return { args, close: i }
      }
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(from, i).trim())
      from = i + 1
    }
  }
  throw new Error(`Unbalanced call in Lua: ${text.slice(open, open + 40)}`)
}

/** Replaces the calls of one-line helpers by their expressions, arguments in place of parameters. */
export function inline (helpers: Map<string, Inline>, text: string): string {
  if (helpers.size === 0) return text
  const call = new RegExp(`(?<![.:\\w])(${[...helpers.keys()].join('|')})\\s*\\(`, 'g')
  for (let pass = 0; pass < 8; pass++) {
    let changed = false
    let out = ''
    let from = 0
    for (const m of text.matchAll(call)) {
      if (m.index < from) continue
      const helper = helpers.get(m[1]) as Inline
      const { args, close } = callArguments(text, m.index + m[0].length - 1)
      const values = new Map(helper.params.map((p, i) => [p, `(${args[i] ?? 'nil'})`]))
      const expression = outsideStrings(helper.expression, part => part.replace(/\b[a-z_][a-z0-9_]*\b/g, name => values.get(name) ?? name))
      out += text.slice(from, m.index) + `(${expression})`
      from = close + 1
      changed = true
    }
    if (!changed) return text
    text = out + text.slice(from)
  }
  return text
}

/** The definitions of `defs` that `body` uses, directly or through other definitions, in their order. */
export function reachable (body: string, defs: readonly Definition[]): Definition[] {
  // A walk of the graph of names: each text is scanned once for the names it mentions.
  const named = new Map<string, Definition[]>()
  for (const def of defs) named.set(def.name, [...(named.get(def.name) ?? []), def])
  const mentions = (text: string): string[] => (code(text).match(/\b[A-Za-z_][A-Za-z0-9_]*\b/g) ?? []).filter(name => named.has(name))
  const used = new Set<string>()
  const pending = mentions(body)
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (used.has(name)) continue
    used.add(name)
    for (const def of named.get(name) ?? []) pending.push(...mentions(def.text))
  }
  return defs.filter(d => used.has(d.name))
}

/**
 * `body` preceded by the definitions it uses, directly or through other definitions, in their
 * order; fails when a constant or a key it uses is not defined.
 */
function link (body: string, defs: Definition[]): string {
  const linked = reachable(body, defs).map(d => d.text).join('') + body
  const bare = code(linked)
  for (const [name] of bare.matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g)) {
    if (!new RegExp(`^local ${name}\\b`, 'm').test(linked)) throw new Error(`Lua constant ${name} is not defined`)
  }
  const key = /\bK\.([a-z]+)/.exec(bare)
  if (key !== null) throw new Error(`Lua key K.${key[1]} is not in the script's KEYS`)
  return linked
}

/** The text Redis runs for a script: `body` linked with `lib` and `constants` for its `keys`. */
export function linkScript (body: string, keys: readonly string[], lib: string, constants: string): string {
  const consts = definitions(constants)
  // Comments go (they cost Redis nothing at run time, but the inliner works on code only).
  const prepare = (text: string): string => foldKeys(keys, foldConstants(consts, code(text)))
  let defs = definitions(lib).map(def => ({ name: def.name, text: prepare(def.text) }))
  const helpers = inlinable(defs)
  defs = defs.filter(def => !helpers.has(def.name)).map(def => ({ name: def.name, text: inline(helpers, def.text) }))
  const indexes = Object.entries(INDEXES).filter(([, name]) => keys.includes(name))
  const ik: Definition = { name: 'IK', text: `local IK = { ${indexes.map(([letter, name]) => `${letter} = KEYS[${keys.indexOf(name) + 1}]`).join(', ')} }\n` }
  const tables = consts.filter(def => !/^local [A-Z0-9_]+ = (-?\d|')/.test(def.text)).map(def => ({ name: def.name, text: prepare(def.text) }))
  return link(inline(helpers, prepare(body)), [...tables, ik, ...defs])
}
