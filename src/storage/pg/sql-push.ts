/**
 * Migration 5: new jobs go straight to a consumer that waits for them.
 *
 * A claiming call (claim, settle-and-claim) that leases fewer jobs than it asked for registers its
 * worker in `<prefix>parked` (its instance's token, how many more jobs it takes, their lease, and
 * until when the registration holds: an UNLOGGED table, as a registration is worth nothing after
 * a crash). The next enqueue of ready jobs on the queue takes one registration (`FOR UPDATE SKIP
 * LOCKED`, then marks it used up), stores up to that many of its jobs already leased to that worker
 * (one row version each, as an enqueue stores any job), and sends them in a notice to the
 * worker's instance: the consumer runs them without a wake-up and a claim in between. Jobs it
 * does not take (more than asked for, too large for a notice, delayed) are queued and woken as
 * before. See README, PgStorage, "Wake-ups and results".
 */
import type { Names } from './names.ts'
import { claimFunctions } from './sql-claim.ts'
import { putFunction } from './sql-data.ts'

/** Migration 5 (see the file's comment). */
export function pushClaims (n: Names): string {
  const f = (name: string): string => n.of(name)
  return `
CREATE UNLOGGED TABLE IF NOT EXISTS ${f('parked')} (
  queue bytea NOT NULL,
  worker bytea NOT NULL,
  token text NOT NULL,
  mx integer NOT NULL,
  lease bigint NOT NULL,
  until bigint NOT NULL,
  PRIMARY KEY (queue, worker)
);
DROP FUNCTION IF EXISTS ${f('settle')}(bytea, bigint, bytea, "char"[], bytea[], integer[], bytea[], bigint[], bytea[], bytea[], bytea[], bytea[], integer, bigint);
DROP FUNCTION IF EXISTS ${f('claim')}(bytea, bigint, bytea, integer, bigint);
` + putFunction(n, true, true) + claimFunctions(n, true)
}
