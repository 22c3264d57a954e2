/**
 * PgStorage's tables and the helper functions its operations share (migration 1), and the
 * migration runner.
 *
 * ## Tables
 * - `<prefix>queues`: one row per queue: the pause flag, the retention (NULL: the defaults) and
 *   the history floors of the terminal states (`floors`: c e x). Only the operator's actions and
 *   the reaper lock it; the data path reads it.
 * - `<prefix>lanes`: eight rows per queue, each with the last stamp it handed out and the changes
 *   of the live counts (q d p f) and of the totals that went through it. A transaction that
 *   changes jobs' states locks one free lane (`FOR UPDATE SKIP LOCKED`), so up to eight batches of
 *   one queue commit at once instead of one at a time. Stamps are unique across lanes: lane l
 *   hands out only stamps ≡ l (mod 8), each at least `now × 1000` and above every lane's last.
 *   Counts are the lanes' sums.
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
 * floor (kept in the queue row), within the retention age, and among the newest `count` of its
 * state above the floor (found from the state index when read: O(count)). Stamps only grow, so
 * leaving history costs no write to the job; the row itself goes once its result cache has
 * expired too (the reaper's sweep, which first stores the floors). A job leaves a terminal state
 * only by an operator's action, which stores the floor first: a job pushed out of history never
 * comes back (QueueState's behaviour).
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

/** Lanes per queue: the most transactions of one queue that change jobs' states at once. */
export const LANES = 8

/** Retention when a queue has none stored: completed 1 h / 1,000, failed and cancelled 7 days / 10,000 (see types.ts). */
export const DEFAULT_RETENTION_SQL = "'{3600000,1000,604800000,10000,604800000,10000}'::bigint[]"

/** Tables and indexes (idempotent: `IF NOT EXISTS`). */
export function tables (n: Names): string {
  const jobs = n.of('jobs')
  const ix = (name: string): string => `"${n.prefix}${name}"`
  return `
CREATE TABLE IF NOT EXISTS ${n.of('queues')} (
  queue bytea PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  retention bigint[],
  floors bigint[] NOT NULL DEFAULT '{0,0,0}'
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS ${n.of('lanes')} (
  queue bytea NOT NULL,
  lane integer NOT NULL,
  n bigint[] NOT NULL DEFAULT '{0,0,0,0}',
  totals bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0}',
  PRIMARY KEY (queue, lane)
) WITH (fillfactor = 20);

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

/** The first key of the per-queue stamp locks: one space per namespace. */
function lockSpace (n: Names): string {
  return `hashtext('${n.channel}')`
}

/** Helper functions every operation uses. */
export function helpers (n: Names): string {
  const q = n.of('queues')
  const jobs = n.of('jobs')
  const lanes = n.of('lanes')
  return `
CREATE OR REPLACE FUNCTION ${n.of('b64')}(x bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(encode(x, 'base64'), E'\\n', '') $$;

-- A job's key: queue length, queue, id.
CREATE OR REPLACE FUNCTION ${n.of('key')}(q bytea, id bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT int4send(length(q)) || q || id $$;

-- Position of a state in the counters array.
CREATE OR REPLACE FUNCTION ${n.of('si')}(s "char") RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT strpos('qdpfcex', s::text) $$;

-- The queue's stamp sequence (its last value: the queue's last stamp), by name: 20 hex digits of
-- the queue's md5 (never the queue's bytes: nothing from a caller is spliced into SQL).
CREATE OR REPLACE FUNCTION ${n.of('seq')}(q bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT '${n.quotedSchema}."${n.prefix}q' || left(md5(q), 20) || '"' $$;

-- Creates a queue's row, lanes and stamp sequence when missing (a concurrent creator waits for
-- the first to commit, then finds them).
CREATE OR REPLACE FUNCTION ${n.of('mkq')}(q bytea) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  INSERT INTO ${q} (queue) VALUES (q) ON CONFLICT DO NOTHING;
  IF FOUND THEN
    EXECUTE 'CREATE SEQUENCE IF NOT EXISTS ' || ${n.of('seq')}(q) || ' MINVALUE 0';
    -- A queue created again after clear() starts over.
    PERFORM setval(${n.of('seq')}(q)::regclass, 0, true);
  END IF;
  INSERT INTO ${lanes} (queue, lane) SELECT q, g FROM generate_series(0, ${LANES - 1}) g ON CONFLICT DO NOTHING;
END $$;

-- The queue row, locked (operators' actions and the reaper: the data path never locks it);
-- created first when 'make'. A queue that does not exist: all fields NULL.
CREATE OR REPLACE FUNCTION ${n.of('lockq')}(q bytea, make boolean) RETURNS ${q} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE r ${q};
BEGIN
  SELECT * INTO r FROM ${q} WHERE queue = q FOR UPDATE;
  IF NOT FOUND AND make THEN
    PERFORM ${n.of('mkq')}(q);
    SELECT * INTO r FROM ${q} WHERE queue = q FOR UPDATE;
  END IF;
  RETURN r;
END $$;

-- The lane this transaction changes the queue through, locked: the one it took already, else a
-- free one (the first from a per-connection start, so that connections spread), else (all busy)
-- it waits for one.
CREATE OR REPLACE FUNCTION ${n.of('lane')}(q bytea) RETURNS integer LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  tag text := '${n.channel}' || md5(q);
  cur text := current_setting('relayq.lane', true);
  l integer;
  start integer := pg_backend_pid() % ${LANES};
BEGIN
  IF cur IS NOT NULL AND cur <> '' AND split_part(cur, ':', 1) = tag THEN RETURN split_part(cur, ':', 2)::integer; END IF;
  FOR i IN 1..2 LOOP
    SELECT x.lane INTO l FROM ${lanes} x WHERE x.queue = q ORDER BY (x.lane - start + ${LANES}) % ${LANES} LIMIT 1 FOR UPDATE SKIP LOCKED;
    EXIT WHEN FOUND;
    IF i = 1 AND NOT EXISTS (SELECT 1 FROM ${lanes} x WHERE x.queue = q) THEN PERFORM ${n.of('mkq')}(q); CONTINUE; END IF;
    l := start;
    PERFORM 1 FROM ${lanes} x WHERE x.queue = q AND x.lane = l FOR UPDATE;
    EXIT;
  END LOOP;
  PERFORM set_config('relayq.lane', tag || ':' || l, true);
  RETURN l;
END $$;

-- The queue's last stamp (0: none yet).
CREATE OR REPLACE FUNCTION ${n.of('top')}(q bytea) RETURNS bigint LANGUAGE sql STABLE AS $$
SELECT coalesce(pg_sequence_last_value(to_regclass(${n.of('seq')}(q))), 0) $$;

-- Takes k consecutive stamps (k >= 1); returns the first: max(now × 1000, last + 1), the
-- contract's definition. The queue's sequence holds the last one, visible to every transaction at
-- once (it is not transactional), and a per-queue advisory lock held for these two calls only
-- (not to the commit) makes reading and moving it one step.
CREATE OR REPLACE FUNCTION ${n.of('stamps')}(q bytea, now_ms bigint, k bigint) RETURNS bigint LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  s regclass := ${n.of('seq')}(q)::regclass;
  h integer := hashtext(md5(q));
  first bigint;
BEGIN
  PERFORM pg_advisory_lock(${lockSpace(n)}, h);
  BEGIN
    first := greatest(now_ms * 1000, coalesce(pg_sequence_last_value(s), 0) + 1);
    PERFORM setval(s, first + greatest(k, 1) - 1, true);
  EXCEPTION WHEN query_canceled OR others THEN
    -- A session lock outlives the statement: never leave it behind.
    PERFORM pg_advisory_unlock(${lockSpace(n)}, h);
    RAISE;
  END;
  PERFORM pg_advisory_unlock(${lockSpace(n)}, h);
  RETURN first;
END $$;

-- Adds to the live counters (d: 7 deltas, q d p f c e x; the terminal ones are read from the
-- state index) and the totals (t: 6 deltas), through this transaction's lane.
CREATE OR REPLACE FUNCTION ${n.of('count')}(q bytea, d bigint[], t bigint[]) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  UPDATE ${lanes} SET
    n = ARRAY[n[1] + d[1], n[2] + d[2], n[3] + d[3], n[4] + d[4]],
    totals = ARRAY[totals[1] + t[1], totals[2] + t[2], totals[3] + t[3], totals[4] + t[4], totals[5] + t[5], totals[6] + t[6]]
  WHERE queue = q AND lane = ${n.of('lane')}(q);
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

-- The stored floor of a terminal state's history and its age limit at now_ms.
CREATE OR REPLACE FUNCTION ${n.of('hfloor')}(r ${q}, s "char", now_ms bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
SELECT greatest(coalesce(r.floors[${n.of('si')}(s) - 4], 0), (now_ms - (${n.of('rule')}(r.retention, s))[1] + 1) * 1000) $$;

-- The smallest stamp of a terminal state's history at now_ms: the stored floor, the age limit
-- and the count limit (the count-th newest job at or above the other two). O(count).
CREATE OR REPLACE FUNCTION ${n.of('efloor')}(q bytea, s "char", now_ms bigint) RETURNS bigint LANGUAGE plpgsql STABLE ${PLANNER} AS $$
DECLARE
  r ${q};
  lo bigint;
  c bigint;
  nf bigint;
BEGIN
  SELECT * INTO r FROM ${q} x WHERE x.queue = q;
  lo := ${n.of('hfloor')}(r, s, now_ms);
  c := (${n.of('rule')}(r.retention, s))[2];
  IF c <= 0 THEN RETURN 9223372036854775807; END IF;
  SELECT j.stamp INTO nf FROM ${jobs} j WHERE j.queue = q AND j.state = s AND j.stamp >= lo ORDER BY j.stamp DESC OFFSET c - 1 LIMIT 1;
  RETURN greatest(lo, coalesce(nf, lo));
END $$;

-- Stores a terminal state's floor (queue row locked): the jobs pushed out of its history by count
-- or age stay out whatever happens to the newer ones.
CREATE OR REPLACE FUNCTION ${n.of('trim')}(q bytea, s "char", now_ms bigint) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  r ${q};
  k integer := ${n.of('si')}(s) - 4;
  rule bigint[];
  fl bigint;
  nf bigint;
  top bigint := ${n.of('top')}(q) + 1;
BEGIN
  SELECT * INTO r FROM ${q} WHERE queue = q;
  IF NOT FOUND THEN RETURN; END IF;
  rule := ${n.of('rule')}(r.retention, s);
  -- Never past the last stamp: a job entering the state later (age 0 puts the limit in the
  -- future) is not out of history already.
  fl := greatest(r.floors[k], least((now_ms - rule[1] + 1) * 1000, top));
  IF rule[2] <= 0 THEN
    fl := greatest(fl, top);
  ELSE
    SELECT j.stamp INTO nf FROM ${jobs} j WHERE j.queue = q AND j.state = s AND j.stamp >= fl ORDER BY j.stamp DESC OFFSET rule[2] - 1 LIMIT 1;
    fl := greatest(fl, coalesce(nf, fl));
  END IF;
  IF fl <> r.floors[k] THEN
    UPDATE ${q} SET floors[k] = fl WHERE queue = q;
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

-- Ends an active job (locked by the caller) in a terminal state (ns): stamp, counters, totals,
-- failure group, 'done' notice to its waiters. old: its state before.
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

-- Deletes a job for good; keeps the counters right. A terminal job in history: the caller holds
-- the queue row and stored the floor (trim) first.
CREATE OR REPLACE FUNCTION ${n.of('forget')}(q bytea, jid bytea) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE s "char";
BEGIN
  DELETE FROM ${jobs} WHERE k = ${n.of('key')}(q, jid) RETURNING state INTO s;
  IF s IS NOT NULL AND s NOT IN ('c', 'e', 'x') THEN
    PERFORM ${n.of('count')}(q, ${n.of('delta')}(s, -1), '{0,0,0,0,0,0}');
  END IF;
END $$;
`
}
