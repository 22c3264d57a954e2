/** The innermost useful message of a connection failure (the server's or the socket's). */
export function reason (err: unknown): string {
  let e = err as (Error & { cause?: unknown }) | undefined
  while (e?.cause instanceof Error) e = e.cause as Error & { cause?: unknown }
  return e?.message ?? String(err)
}
