/**
 * PgStorage's tables and the helper functions its operations share (migration 1), and the
 * migration runner.
 *
 * ## Tables
 * - `<prefix>queues`: one row per queue: the last stamp handed out, the pause flag, the retention
 *   (NULL: the defaults), live counts per state (`n`, in the order q d p f c e x), the history
 *   floors of the terminal states (`floors`: c e x) and the totals. Every operation that changes
 *   a job's state locks this row first: stamps are exact (`max(now × 1000, last + 1)`, the
 *   contract's definition) and counts are O(1). The lock is held to the commit, so one queue
 *   commits its state changes one statement at a time; statements carry batches.
 * - `<prefix>jobs`: one row per job, keyed by `k`: the queue's length (4 bytes), the queue and the
 *   id. A single-column key leaves the planner one way to find a job, whatever its statistics. Ids, queue names, worker ids and error
 *   texts are `bytea` (their UTF-8 bytes): any string is stored as given (no NUL or encoding
 *   surprise), and byte order is the contract's code-point order.
 * - `<prefix>groups`: failure group descriptions; `<prefix>workers`: the worker registry;
 *   `<prefix>locks`: named locks with an owner and a deadline; `<prefix>inbox`: jobs enqueued
 *   inside a caller's transaction, adopted by the next operation on their queue.
 *
 * ## History without a write per trimmed job
 * A terminal job is in the history of its state while its stamp is at or above the state's
 * floor (kept in the queue row) and within the retention age. Trimming by count moves the floor
 * up (the oldest jobs are the ones pushed out, and stamps only grow), so leaving history costs no
 * write to the job; the row itself goes once its result cache has expired too (the reaper's
 * sweep). This is QueueState's behaviour: a job pushed out of history never comes back.
 *
 * States are one "char": q queued, d delayed, p processing, f failing, c completed, e failed,
 * x cancelled.
 */
import type { Names } from './names.ts'

/**
 * Attributes of every PL/pgSQL function: its statements are planned once per connection (a
 * generic plan), as nested loops over index scans. relayq does not depend on planner statistics
 * (autovacuum may be off, its tables just created): every statement is shaped around one index
 * (a job is found by its key, a state's jobs by the state index), and with these settings no
 * estimate can turn a lookup into a scan of the queue.
 */
export const PLANNER = 'SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_bitmapscan = off ' +
  'SET enable_hashjoin = off SET enable_mergejoin = off'

/** Retention when a queue has none stored: completed 1 h / 1,000, failed and cancelled 7 days / 10,000 (see types.ts). */
export const DEFAULT_RETENTION_SQL = "'{3600000,1000,604800000,10000,604800000,10000}'::bigint[]"

/** Tables and indexes (idempotent: `IF NOT EXISTS`). */
export function tables (n: Names): string {
  const jobs = n.of('jobs')
  const ix = (name: string): string => `"${n.prefix}${name}"`
  return `
CREATE TABLE IF NOT EXISTS ${n.of('queues')} (
  queue bytea PRIMARY KEY,
  stamp bigint NOT NULL DEFAULT 0,
  paused boolean NOT NULL DEFAULT false,
  retention bigint[],
  n bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0,0}',
  floors bigint[] NOT NULL DEFAULT '{0,0,0}',
  totals bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0}'
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS ${jobs} (
  k bytea PRIMARY KEY,
  queue bytea NOT NULL,
  id bytea NOT NULL,
  state "char" NOT NULL,
  stamp bigint NOT NULL,
  pos bigint,
  payload bytea NOT NULL,
  created_at bigint NOT NULL,
  max_attempts integer NOT NULL,
  result_ttl bigint NOT NULL,
  delay bigint NOT NULL,
  run_timeout bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  stalls integer NOT NULL DEFAULT 0,
  retries integer NOT NULL DEFAULT 0,
  due_at bigint NOT NULL DEFAULT 0,
  ready_at bigint NOT NULL,
  lease_until bigint NOT NULL DEFAULT 0,
  worker bytea NOT NULL DEFAULT '',
  cancel_requested boolean NOT NULL DEFAULT false,
  expires_at bigint,
  result bytea,
  error bytea,
  waiters text[],
  entered_at bigint NOT NULL,
  started_at bigint NOT NULL DEFAULT 0,
  attempt_started_at bigint NOT NULL DEFAULT 0,
  finished_at bigint NOT NULL DEFAULT 0,
  last_outcome text NOT NULL DEFAULT '',
  grp bytea,
  history jsonb
);
CREATE INDEX IF NOT EXISTS ${ix('jobs_state')} ON ${jobs} (queue, state, stamp);
CREATE INDEX IF NOT EXISTS ${ix('jobs_ready')} ON ${jobs} (queue, pos) WHERE state = 'q';
CREATE INDEX IF NOT EXISTS ${ix('jobs_due')} ON ${jobs} (queue, due_at, id) WHERE state IN ('d', 'f');
CREATE INDEX IF NOT EXISTS ${ix('jobs_expiry')} ON ${jobs} (queue, expires_at) WHERE state IN ('c', 'e', 'x');
CREATE INDEX IF NOT EXISTS ${ix('jobs_group')} ON ${jobs} (queue, grp, stamp) WHERE state = 'e' AND grp IS NOT NULL;

CREATE TABLE IF NOT EXISTS ${n.of('groups')} (
  queue bytea NOT NULL,
  key bytea NOT NULL,
  name bytea NOT NULL,
  message bytea NOT NULL,
  frame bytea NOT NULL,
  PRIMARY KEY (queue, key)
);

CREATE TABLE IF NOT EXISTS ${n.of('workers')} (
  queue bytea NOT NULL,
  id bytea NOT NULL,
  host bytea NOT NULL,
  pid integer NOT NULL,
  concurrency integer NOT NULL,
  running integer NOT NULL,
  started_at bigint NOT NULL,
  last_seen bigint NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (queue, id)
);

CREATE TABLE IF NOT EXISTS ${n.of('locks')} (
  name bytea PRIMARY KEY,
  owner bytea NOT NULL,
  until bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS ${n.of('inbox')} (
  seq bigserial PRIMARY KEY,
  queue bytea NOT NULL,
  id bytea NOT NULL,
  payload bytea NOT NULL,
  max_attempts integer NOT NULL,
  result_ttl bigint NOT NULL,
  delay bigint NOT NULL,
  run_timeout bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ${ix('inbox_queue')} ON ${n.of('inbox')} (queue, seq);
`
}

/** Helper functions every operation uses. Each assumes its caller holds the queue row's lock. */
export function helpers (n: Names): string {
  const q = n.of('queues')
  const jobs = n.of('jobs')
  return `
CREATE OR REPLACE FUNCTION ${n.of('b64')}(x bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(encode(x, 'base64'), E'\\n', '') $$;

-- A job's key: queue length, queue, id.
CREATE OR REPLACE FUNCTION ${n.of('key')}(q bytea, id bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT int4send(length(q)) || q || id $$;

-- Position of a state in the counters array.
CREATE OR REPLACE FUNCTION ${n.of('si')}(s "char") RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT strpos('qdpfcex', s::text) $$;

-- The queue row, locked; created first when 'make'. A queue that does not exist: all fields NULL.
CREATE OR REPLACE FUNCTION ${n.of('lockq')}(q bytea, make boolean) RETURNS ${q} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE r ${q};
BEGIN
  SELECT * INTO r FROM ${q} WHERE queue = q FOR UPDATE;
  IF NOT FOUND AND make THEN
    INSERT INTO ${q} (queue) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO r FROM ${q} WHERE queue = q FOR UPDATE;
  END IF;
  RETURN r;
END $$;

-- Takes k consecutive stamps (k >= 1); returns the first.
CREATE OR REPLACE FUNCTION ${n.of('stamps')}(q bytea, now_ms bigint, k bigint) RETURNS bigint LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE s bigint;
BEGIN
  UPDATE ${q} SET stamp = greatest(now_ms * 1000, stamp + 1) + k - 1 WHERE queue = q RETURNING stamp - k + 1 INTO s;
  RETURN s;
END $$;

-- Adds to the live counters (d: 7 deltas, q d p f c e x) and the totals (t: 6 deltas).
CREATE OR REPLACE FUNCTION ${n.of('count')}(q bytea, d bigint[], t bigint[]) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  UPDATE ${q} SET
    n = ARRAY[n[1] + d[1], n[2] + d[2], n[3] + d[3], n[4] + d[4], n[5] + d[5], n[6] + d[6], n[7] + d[7]],
    totals = ARRAY[totals[1] + t[1], totals[2] + t[2], totals[3] + t[3], totals[4] + t[4], totals[5] + t[5], totals[6] + t[6]]
  WHERE queue = q;
END $$;

-- One state's delta array (k jobs more in s).
CREATE OR REPLACE FUNCTION ${n.of('delta')}(s "char", k bigint) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
SELECT array_agg(CASE WHEN i = ${n.of('si')}(s) THEN k ELSE 0 END ORDER BY i) FROM generate_series(1, 7) i $$;

-- The delta array of k jobs moving from state a to state b.
CREATE OR REPLACE FUNCTION ${n.of('moved')}(a "char", b "char", k bigint) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
SELECT array_agg(k * ((i = ${n.of('si')}(b))::int - (i = ${n.of('si')}(a))::int) ORDER BY i) FROM generate_series(1, 7) i $$;

-- The retention rule {age, count} of a terminal state (an expression: inlined by the planner).
CREATE OR REPLACE FUNCTION ${n.of('rule')}(r bigint[], s "char") RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
SELECT ARRAY[(coalesce(r, ${DEFAULT_RETENTION_SQL}))[2 * strpos('qdpfcex', s::text) - 9], (coalesce(r, ${DEFAULT_RETENTION_SQL}))[2 * strpos('qdpfcex', s::text) - 8]] $$;

-- The smallest stamp of a terminal state's history at now_ms: its floor, or the age limit.
CREATE OR REPLACE FUNCTION ${n.of('hfloor')}(r ${q}, s "char", now_ms bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
SELECT greatest(r.floors[${n.of('si')}(s) - 4], (now_ms - (${n.of('rule')}(r.retention, s))[1] + 1) * 1000) $$;

-- Keeps a terminal state's history within its retention: raises its floor past the jobs pushed out.
CREATE OR REPLACE FUNCTION ${n.of('trim')}(q bytea, s "char", now_ms bigint) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  r ${q};
  k integer := ${n.of('si')}(s) - 4;
  rule bigint[];
  fl bigint;
  live bigint;
  nf bigint;
  af bigint;
  gone bigint;
BEGIN
  SELECT * INTO r FROM ${q} WHERE queue = q;
  rule := ${n.of('rule')}(r.retention, s);
  fl := r.floors[k];
  live := r.n[k + 4];
  IF live > rule[2] THEN
    SELECT stamp INTO nf FROM ${jobs} WHERE queue = q AND state = s AND stamp >= fl ORDER BY stamp OFFSET live - rule[2] LIMIT 1;
    fl := coalesce(nf, r.stamp + 1);
    live := rule[2];
  END IF;
  -- Never past the last stamp: a job entering the state later (age 0 puts the limit in the
  -- future) is not out of history already.
  af := least((now_ms - rule[1] + 1) * 1000, r.stamp + 1);
  IF af > fl THEN
    SELECT count(*) INTO gone FROM ${jobs} WHERE queue = q AND state = s AND stamp >= fl AND stamp < af;
    live := live - gone;
    fl := af;
  END IF;
  IF fl <> r.floors[k] THEN
    UPDATE ${q} SET floors[k] = fl, n[k + 4] = live WHERE queue = q;
  END IF;
END $$;

-- An attempt that ended without ending the job, appended to its history (the newest 20 kept;
-- removing an index out of range changes nothing).
CREATE OR REPLACE FUNCTION ${n.of('hpush')}(h jsonb, att integer, started bigint, fin bigint, w bytea, outcome text, err bytea)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
SELECT (coalesce(h, '[]'::jsonb) || jsonb_build_array(
    jsonb_build_object('a', att, 's', started, 'f', fin, 'w', ${n.of('b64')}(w), 'o', outcome)
    || CASE WHEN err IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('e', ${n.of('b64')}(err)) END))
  - CASE WHEN coalesce(jsonb_array_length(h), 0) >= 20 THEN 0 ELSE -1000 END $$;

-- One job's record in a 'done' notice: state letter, base64 id, ':', base64 body, ';'. Longer than
-- 3,900 characters: the body is left out (upper-case letter) and the listener reads it back.
CREATE OR REPLACE FUNCTION ${n.of('drec')}(s "char", id bytea, body bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN 4 * ((length(id) + 2) / 3) + 4 * ((coalesce(length(body), 0) + 2) / 3) + 3 <= 3900
  THEN s::text || ${n.of('b64')}(id) || ':' || coalesce(${n.of('b64')}(body), '') || ';'
  ELSE upper(s::text) || ${n.of('b64')}(id) || ':;' END $$;

-- Sends 'done' records to the instances waiting for them: one notice per instance and 4,000
-- characters of records (a record is at most 3,900: every payload stays under NOTIFY's 8,000 bytes).
CREATE OR REPLACE FUNCTION ${n.of('notify_done')}(q bytea, tokens text[], recs text[]) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  IF cardinality(tokens) > 0 THEN
    PERFORM pg_notify('${n.channel}_d' || t, md5(q) || ' ' || string_agg(rec, '' ORDER BY o))
    FROM (SELECT t, rec, o, (sum(length(rec)) OVER (PARTITION BY t ORDER BY o) - length(rec)) / 4000 AS bucket
          FROM unnest(tokens, recs) WITH ORDINALITY AS u(t, rec, o)) z
    GROUP BY t, bucket;
  END IF;
END $$;

-- Wakes blocked claims on the queue (in every process listening).
CREATE OR REPLACE FUNCTION ${n.of('wake')}(q bytea) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('${n.channel}_w', md5(q)); END $$;

-- Ends an active job in a terminal state (ns): stamp, counters, totals, history trim, failure
-- group, 'done' notice to its waiters. old: its state before.
CREATE OR REPLACE FUNCTION ${n.of('finish')}(q bytea, jid bytea, old "char", ns "char", outcome text, res bytea, err bytea,
  ttl bigint, now_ms bigint, gk bytea) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  st bigint := ${n.of('stamps')}(q, now_ms, 1);
  w text[];
  body bytea;
BEGIN
  UPDATE ${jobs} SET state = ns, stamp = st, entered_at = now_ms, pos = NULL, result = res,
    error = CASE WHEN err IS NOT NULL THEN err WHEN ns = 'e' THEN error END,
    last_outcome = outcome, finished_at = now_ms, expires_at = now_ms + ttl, grp = CASE WHEN ns = 'e' THEN gk END
  WHERE k = ${n.of('key')}(q, jid)
  RETURNING waiters, CASE ns WHEN 'c' THEN result WHEN 'e' THEN error END INTO w, body;
  PERFORM ${n.of('count')}(q, ${n.of('moved')}(old, ns, 1), ARRAY[0, (ns = 'c')::int, (ns = 'e')::int, 0, 0, (ns = 'x')::int]::bigint[]);
  PERFORM ${n.of('trim')}(q, ns, now_ms);
  IF w IS NOT NULL THEN
    PERFORM ${n.of('notify_done')}(q, w, array_fill(${n.of('drec')}(ns, jid, body), ARRAY[cardinality(w)]));
  END IF;
END $$;

-- Moves an active job to the tail of the ready queue (stamp, counters). old: its state before.
CREATE OR REPLACE FUNCTION ${n.of('requeue')}(q bytea, jid bytea, old "char", now_ms bigint, ready bigint) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE st bigint := ${n.of('stamps')}(q, now_ms, 1);
BEGIN
  UPDATE ${jobs} SET state = 'q', stamp = st, pos = st, entered_at = now_ms, ready_at = ready WHERE k = ${n.of('key')}(q, jid);
  PERFORM ${n.of('count')}(q, ${n.of('moved')}(old, 'q', 1), '{0,0,0,0,0,0}');
END $$;

-- Deletes a job for good; keeps the counters right (a terminal job counts while in its history).
CREATE OR REPLACE FUNCTION ${n.of('forget')}(q bytea, jid bytea) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE s "char"; st bigint; r ${q};
BEGIN
  DELETE FROM ${jobs} WHERE k = ${n.of('key')}(q, jid) RETURNING state, stamp INTO s, st;
  IF s IS NULL THEN RETURN; END IF;
  SELECT * INTO r FROM ${q} WHERE queue = q;
  IF s NOT IN ('c', 'e', 'x') OR st >= r.floors[${n.of('si')}(s) - 4] THEN
    PERFORM ${n.of('count')}(q, ${n.of('delta')}(s, -1), '{0,0,0,0,0,0}');
  END IF;
END $$;
`
}
