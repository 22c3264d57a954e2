import { StorageError, safeMessage } from './errors.ts'
import { failureGroup } from './failure-groups.ts'
import { encodeError } from './job-error.ts'
import type { Settlement } from './storage/types.ts'

/**
 * What to store instead of a settlement the storage refused for its content (a result or an error
 * the server would not take), and the error the job fails with: a `complete` becomes a `fail`, a
 * `fail` or `retry` keeps its type with a short error in place of the refused one. Undefined for a
 * `release` or `cancel`, which carry nothing to replace.
 */
export function replacement (settlement: Settlement, reason: unknown): { settlement: Settlement, error: StorageError } | undefined {
  const { type, id, attempt } = settlement
  if (type === 'release' || type === 'cancel') return undefined
  const what = type === 'complete' ? 'result' : 'error'
  const error = new StorageError(`The storage refused to store the ${what} of job '${id}': ${safeMessage(reason)}`, reason, { retryable: false })
  const bytes = encodeError(error)
  if (type === 'complete') return { settlement: { type: 'fail', id, attempt, error: bytes, ttl: settlement.ttl, group: failureGroup(error) }, error }
  return { settlement: { ...settlement, error: bytes }, error }
}
