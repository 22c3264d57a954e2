/**
 * Loading the scripts' Functions library (library.ts) on a server, and loading it again where it
 * went missing. The library is loaded when the storage connects (on a Cluster: on every master).
 * A server can lose it afterwards (FUNCTION FLUSH, a restart without persistence, a failover to a
 * node without it, a new Cluster master): its FCALLs then fail with "Function not found", and the
 * caller loads it again and sends the call anew (see scripts.ts). Where `FUNCTION LOAD` is refused
 * (an ACL without it, a proxy or managed service without Functions) the scripts run by EVALSHA.
 */
import { Cluster, ReplyError, type Redis } from 'iovalkey'
import type { Library } from './library.ts'

/** How the scripts are called: FCALL of the library, or EVALSHA of each script. */
export type CallMode = 'functions' | 'scripts'

/** Refusals of `FUNCTION LOAD` that mean the server will not run Functions for this client. */
const REFUSED = /^NOPERM\b|unknown command|unknown subcommand|not allowed|disabled/i

/** The refusal of `FUNCTION LOAD` (without REPLACE) of a library the server has. */
const ALREADY_LOADED = /already exists/i

/** The error an FCALL of a function the server does not have replies (Redis and Valkey). */
export function functionNotFound (err: unknown): boolean {
  return err instanceof ReplyError && /Function not found/i.test((err as Error).message)
}

/** The library's state on one client's server(s). */
export class FunctionLoader {
  readonly #client: Redis | Cluster
  readonly #library: Library
  /** Undefined until a load answered. */
  #mode: CallMode | undefined
  #loading: Promise<CallMode> | undefined

  constructor (client: Redis | Cluster, library: Library) {
    this.#client = client
    this.#library = library
  }

  /** How calls go now; undefined until the library was loaded (or refused) once. */
  get mode (): CallMode | undefined {
    return this.#mode
  }

  /**
   * Loads the library (Cluster: on every master), once at a time: a call made meanwhile shares
   * the load in flight. Resolves how the scripts are to be called; rejects if the server could not
   * answer (the next call tries again).
   */
  load (): Promise<CallMode> {
    this.#loading ??= this.#load().finally(() => { this.#loading = undefined })
    return this.#loading
  }

  async #load (): Promise<CallMode> {
    const client = this.#client
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client]
    try {
      // Not REPLACE: a library of this name has this very source (the name is its hash), and
      // Redis answers "already exists" without compiling it again (Redis runs nothing else while
      // it compiles: every process connecting would stall the server).
      await Promise.all(nodes.map(node => (node.call('FUNCTION', 'LOAD', this.#library.source) as Promise<unknown>).catch((err: unknown) => {
        if (!(err instanceof ReplyError && ALREADY_LOADED.test((err as Error).message))) throw err
      })))
      this.#mode = 'functions'
    } catch (err) {
      if (!(err instanceof ReplyError && REFUSED.test((err as Error).message))) throw err
      this.#mode = 'scripts'
    }
    return this.#mode
  }
}
