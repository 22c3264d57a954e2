/**
 * Migration 4: a transaction's lane is reserved with a transaction-level advisory lock instead of
 * a row lock on the lane (same lanes, same counts, same signatures).
 *
 * - `lane(q)`: the first lane whose advisory lock is free (`pg_try_advisory_xact_lock`, from the
 *   same per-connection start as before), else it waits for its start lane's. An advisory lock
 *   lives in shared memory: taking it writes nothing (a row lock wrote the lane's tuple and a WAL
 *   record), and is released at the commit like the row lock was. The lane row itself is locked
 *   by the one UPDATE that adds the transaction's counts, which waits for nobody: its lane's
 *   advisory lock keeps every other relayq transaction off it.
 * - `count(q, d, t)`: the lane is read once into a variable (`lane = lane(q)` in the WHERE of
 *   migration 1 is a volatile call the planner cannot use as an index key: it ran once per lane row
 *   of the queue); a queue without lanes (never the case after `mkq`) gets them first.
 *
 * The advisory keys are the one-`bigint` form (PostgreSQL keeps it apart from the two-`integer`
 * form the stamps' lock uses): a hash of the namespace, the queue and the lane. Two lanes whose
 * hashes collide only ever make a transaction pick another lane.
 */
import type { Names } from './names.ts'
import { LANES, PLANNER } from './schema.ts'

/** Migration 4 (see the file's comment). */
export function laneLocks (n: Names): string {
  const lanes = n.of('lanes')
  const f = (name: string): string => n.of(name)
  return `
CREATE OR REPLACE FUNCTION ${f('lane')}(q bytea) RETURNS integer LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  tag text := '${n.channel}' || md5(q);
  cur text := current_setting('relayq.lane', true);
  l integer;
  start integer := pg_backend_pid() % ${LANES};
BEGIN
  IF cur IS NOT NULL AND cur <> '' AND split_part(cur, ':', 1) = tag THEN RETURN split_part(cur, ':', 2)::integer; END IF;
  FOR i IN 0..${LANES - 1} LOOP
    l := (start + i) % ${LANES};
    EXIT WHEN pg_try_advisory_xact_lock(hashtextextended(tag, l));
    l := NULL;
  END LOOP;
  IF l IS NULL THEN
    l := start;
    PERFORM pg_advisory_xact_lock(hashtextextended(tag, l));
  END IF;
  PERFORM set_config('relayq.lane', tag || ':' || l, true);
  RETURN l;
END $$;

CREATE OR REPLACE FUNCTION ${f('count')}(q bytea, d bigint[], t bigint[]) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE l integer := ${f('lane')}(q);
BEGIN
  UPDATE ${lanes} SET
    n = ARRAY[n[1] + d[1], n[2] + d[2], n[3] + d[3], n[4] + d[4]],
    totals = ARRAY[totals[1] + t[1], totals[2] + t[2], totals[3] + t[3], totals[4] + t[4], totals[5] + t[5], totals[6] + t[6]]
  WHERE queue = q AND lane = l;
  IF NOT FOUND THEN
    PERFORM ${f('mkq')}(q);
    UPDATE ${lanes} SET
      n = ARRAY[n[1] + d[1], n[2] + d[2], n[3] + d[3], n[4] + d[4]],
      totals = ARRAY[totals[1] + t[1], totals[2] + t[2], totals[3] + t[3], totals[4] + t[4], totals[5] + t[5], totals[6] + t[6]]
    WHERE queue = q AND lane = l;
  END IF;
END $$;
`
}
