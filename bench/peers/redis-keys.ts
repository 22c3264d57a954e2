/** Deleting a run's keys from a shared Redis: SCAN for the run's unique prefix, then UNLINK. Never FLUSH. */
import { Redis } from 'iovalkey'

/** Glob-escapes `s` for SCAN MATCH. */
function globEscape (s: string): string {
  return s.replace(/[*?[\]\\]/g, c => `\\${c}`)
}

/** Deletes every key of `url` matching `pattern` (`{prefix}` is replaced by the escaped prefix); returns how many. */
export async function deleteKeys (url: string, prefix: string, pattern = '{prefix}*'): Promise<number> {
  const client = new Redis(url)
  try {
    const match = pattern.replace('{prefix}', globEscape(prefix))
    let deleted = 0
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) deleted += await client.unlink(...keys)
    } while (cursor !== '0')
    return deleted
  } finally {
    client.disconnect()
  }
}
