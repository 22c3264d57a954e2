/**
 * Loading a peer package that may not be installed (peers are devDependencies; a user without them
 * gets a one-line note instead of a crash).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PeerUnavailableError } from './types.ts'

function isNotFound (err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException
  return (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && String(e.message).includes(pkg)
}

/** Imports `pkg`, after checking that each of `alsoNeeds` is installed too. */
export async function importPackage<T> (pkg: string, alsoNeeds: string[] = []): Promise<T> {
  for (const name of [...alsoNeeds, pkg]) {
    try {
      import.meta.resolve(name)
    } catch (err) {
      if (isNotFound(err, name)) throw new PeerUnavailableError(`${name} is not installed (npm install --save-dev ${name})`)
      throw err
    }
  }
  try {
    return await import(pkg) as T
  } catch (err) {
    if (isNotFound(err, pkg)) throw new PeerUnavailableError(`${pkg} is not installed (npm install --save-dev ${pkg})`)
    throw err
  }
}

/** The installed version of `pkg`: the nearest package.json named `pkg` above its entry point. */
export function packageVersion (pkg: string): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(pkg)))
  for (;;) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (json.name === pkg && json.version !== undefined) return json.version
    } catch {}
    const up = dirname(dir)
    if (up === dir) return 'unknown'
    dir = up
  }
}
