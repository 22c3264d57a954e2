/**
 * The data path's functions (migration 1): enqueue, claim, settle-and-claim, lease extension,
 * cancel/abort, result TTL, stall recovery with the retention sweep, locks and heartbeats. Each
 * is one statement from the client: one round trip. See schema.ts for the tables.
 */
import type { Names } from './names.ts'
import { PLANNER } from './schema.ts'

/**
 * The end of claim and settle-and-claim (queue row read into r, this transaction's lane taken):
 * promotes due delayed and failing jobs, leases up to mx ready ones to w, and answers them, then
 * a meta row with the refused settlements (v_refused) and, when fewer than mx were found, the
 * earliest due time. Rows are taken with `FOR UPDATE SKIP LOCKED`: claims of one queue running at
 * once take different jobs and do not wait for each other.
 */
function take (n: Names, meta: (refused: string, nextDue: string) => string, trace: boolean): string {
  const jobs = n.of('jobs')
  const f = (name: string): string => n.of(name)
  return `
  IF r.paused THEN
    RETURN NEXT ${meta('v_refused', 'NULL')};
    RETURN;
  END IF;
  IF promote AND EXISTS (SELECT 1 FROM ${jobs} WHERE queue = q AND state IN ('d', 'f') AND due_at <= now_ms) THEN
    -- In (due time, id) order, at most 5,000 per call (bounded work; the rest on the next call).
    SELECT array_agg(d.k ORDER BY d.due_at, d.id), count(*) FILTER (WHERE d.state = 'd') INTO ks, kd FROM (
      SELECT j.k, j.id, j.state, j.due_at FROM ${jobs} j WHERE j.queue = q AND j.state IN ('d', 'f') AND j.due_at <= now_ms
      ORDER BY j.due_at, j.id LIMIT 5000 FOR UPDATE SKIP LOCKED) d;
    k := coalesce(cardinality(ks), 0);
    IF k > 0 THEN
      base := ${f('stamps')}(q, now_ms, k);
      UPDATE ${jobs} j SET state = 'q', stamp = base + u.o - 1, pos = base + u.o - 1, ready_at = j.due_at,
        entered_at = now_ms
      FROM unnest(ks) WITH ORDINALITY AS u(k, o) WHERE j.k = u.k;
      PERFORM ${f('count')}(q, ARRAY[k, -kd, 0, kd - k, 0, 0, 0], '{0,0,0,0,0,0}');
    END IF;
  END IF;
  IF mx > 0 THEN
    SELECT array_agg(c.k ORDER BY c.pos) INTO ks FROM (
      SELECT j.k, j.pos FROM ${jobs} j WHERE j.queue = q AND j.state = 'q' ORDER BY j.pos LIMIT mx FOR UPDATE SKIP LOCKED) c;
    got := coalesce(cardinality(ks), 0);
    IF got > 0 THEN
      base := ${f('stamps')}(q, now_ms, got);
      RETURN QUERY
        WITH up AS (
          UPDATE ${jobs} j SET state = 'p', attempts = j.attempts + 1, worker = w, lease_until = now_ms + lease,
            attempt_started_at = now_ms, started_at = CASE WHEN j.started_at = 0 THEN now_ms ELSE j.started_at END,
            stamp = base + u.o - 1, entered_at = now_ms, pos = NULL
          FROM unnest(ks) WITH ORDINALITY AS u(k, o) WHERE j.k = u.k
          RETURNING j.id, j.payload, j.attempts, j.max_attempts, j.result_ttl, j.created_at, j.run_timeout, j.ready_at, j.stamp${trace ? ', j.trace' : ''})
        SELECT up.id, up.payload, up.attempts, up.max_attempts, up.result_ttl, up.created_at, up.run_timeout, up.ready_at,
          NULL::integer[], NULL::bigint${trace ? ', up.trace' : ''}
        FROM up ORDER BY up.stamp;
      PERFORM ${f('count')}(q, ARRAY[-got, 0, got, 0, 0, 0, 0], '{0,0,0,0,0,0}');
    END IF;
  END IF;
  IF got < mx THEN
    SELECT j.due_at INTO nd FROM ${jobs} j WHERE j.queue = q AND j.state IN ('d', 'f') ORDER BY j.due_at LIMIT 1;
  END IF;
  RETURN NEXT ${meta('v_refused', 'nd')};`
}

/** The variables {@link take} uses; `promote`: a settle that claims nothing promotes nothing either. */
const TAKE_VARS = `  r record;
  promote boolean := true;
  base bigint;
  k bigint;
  kd bigint;
  ks bytea[];
  got bigint := 0;
  nd bigint;
  v_refused integer[];`

/**
 * The statements of settle-and-claim that apply a batch of settlements (migrations 1 and 3 alike):
 * fencing, then one UPDATE of every job it lets through, their notices and counts, into the
 * function's variables `acc`, `k`, `kq` ... `recs`. `base`, `oks` and the settlement arrays are
 * the function's too.
 */
export function settleRows (n: Names): string {
  const jobs = n.of('jobs')
  const f = (name: string): string => n.of(name)
  return `  -- Per job, the first settlement fencing lets through (any later one of it finds it settled),
  -- among the jobs still leased to w. Not locked here: the UPDATE below checks all of it again on
  -- the row it changes (a concurrent abort, stall recovery or operator's action that got there
  -- first makes it skip the job, reported refused: its lease then runs out and the reaper ends it).
  SELECT array_agg(ok.o ORDER BY ok.o), array_agg(ok.cr ORDER BY ok.o), array_agg(ok.rttl ORDER BY ok.o) INTO oks, crs, rttls FROM (
    SELECT DISTINCT ON (i.id) i.o, j.cancel_requested AS cr, j.result_ttl AS rttl
    FROM unnest(s_id, s_att) WITH ORDINALITY AS i(id, att, o)
    JOIN ${jobs} j ON j.k = ${f('key')}(q, i.id) AND j.state = 'p' AND j.worker = w AND j.attempts = i.att
    ORDER BY i.id, i.o) ok;
  k := coalesce(cardinality(oks), 0);
  IF k > 0 THEN
  base := ${f('stamps')}(q, now_ms, k);
  WITH rk AS (
    SELECT c.o, s_type[c.o::integer] AS t, s_id[c.o::integer] AS id, s_body[c.o::integer] AS body, s_n[c.o::integer] AS n,
      g_key[c.o::integer] AS gk, c.cr, c.rttl, base + c.rn - 1 AS st,
      (CASE WHEN c.cr THEN 'x' WHEN s_type[c.o::integer] = 'r' THEN CASE WHEN s_n[c.o::integer] > 0 THEN 'f' ELSE 'q' END
        WHEN s_type[c.o::integer] = 'l' THEN 'q' ELSE s_type[c.o::integer]::text END)::"char" AS ns
    FROM unnest(oks, crs, rttls) WITH ORDINALITY AS c(o, cr, rttl, rn)),
  up AS (
    UPDATE ${jobs} j SET
      state = rk.ns, stamp = rk.st, entered_at = now_ms,
      pos = CASE WHEN rk.ns = 'q' THEN CASE WHEN rk.t = 'l' THEN -rk.st ELSE rk.st END END,
      attempts = CASE WHEN rk.t = 'l' AND NOT rk.cr THEN j.attempts - 1 ELSE j.attempts END,
      result = CASE WHEN rk.ns = 'c' THEN rk.body END,
      error = CASE WHEN rk.ns = 'e' OR (rk.t = 'r' AND NOT rk.cr) THEN rk.body WHEN rk.ns IN ('c', 'x') THEN NULL ELSE j.error END,
      due_at = CASE WHEN rk.ns = 'f' THEN now_ms + rk.n ELSE j.due_at END,
      ready_at = CASE WHEN rk.ns = 'q' THEN now_ms ELSE j.ready_at END,
      expires_at = CASE WHEN rk.ns IN ('c', 'e', 'x') THEN now_ms + CASE WHEN rk.cr AND rk.t IN ('r', 'l') THEN rk.rttl ELSE rk.n END END,
      finished_at = CASE WHEN rk.ns IN ('c', 'e', 'x') THEN now_ms ELSE j.finished_at END,
      last_outcome = CASE rk.ns WHEN 'c' THEN 'completed' WHEN 'e' THEN 'failed' WHEN 'x' THEN 'cancelled' ELSE j.last_outcome END,
      grp = CASE WHEN rk.ns = 'e' THEN rk.gk END,
      history = CASE WHEN rk.ns IN ('q', 'f') THEN ${f('hpush')}(j.history, j.attempts, j.attempt_started_at, now_ms, j.worker,
        CASE WHEN rk.t = 'r' THEN 'retried' ELSE 'released' END, CASE WHEN rk.t = 'r' THEN rk.body END) ELSE j.history END
    FROM rk WHERE j.k = ${f('key')}(q, rk.id) AND j.state = 'p' AND j.worker = w AND j.attempts = s_att[rk.o::integer]
      AND j.cancel_requested = rk.cr
    RETURNING rk.o, rk.ns, rk.t, rk.cr, j.id, j.waiters, CASE WHEN rk.ns IN ('c', 'e') THEN rk.body END AS body),
  notes AS (
    SELECT array_agg(tk ORDER BY up.o) AS tokens, array_agg(${f('drec')}(up.ns, up.id, up.body) ORDER BY up.o) AS recs
    FROM up, unnest(up.waiters) AS tk WHERE up.ns IN ('c', 'e', 'x'))
  SELECT array_agg(up.o), count(*), count(*) FILTER (WHERE up.ns = 'q'), count(*) FILTER (WHERE up.ns = 'f'),
    count(*) FILTER (WHERE up.ns = 'c'), count(*) FILTER (WHERE up.ns = 'e'), count(*) FILTER (WHERE up.ns = 'x'),
    count(*) FILTER (WHERE up.t = 'r' AND NOT up.cr), (SELECT nt.tokens FROM notes nt), (SELECT nt.recs FROM notes nt)
  INTO acc, k, kq, kf, kc, ke, kx, kr, tokens, recs FROM up;`
}

/**
 * `put`, which stores new jobs (migration 1; with `trace`, migration 2). `push` (migration 5): the
 * first ready jobs go straight to a consumer waiting for the queue (a row of `parked`, taken with
 * `FOR UPDATE SKIP LOCKED` and used up: `mx` 0), stored leased to it, and are sent to it in a notice on
 * its instance's channel (`<channel>_j<token>`: the queue's hash, a space, then JSON
 * `[worker, [[id, payload, attempts, max_attempts, result_ttl, created_at, run_timeout, ready_at,
 * trace], ...]]`, ids, worker and payloads in base64), as many as it asked for and as fit in
 * 7,800 bytes; the others are queued and woken as before. Never for a paused queue.
 */
export function putFunction (n: Names, trace: boolean, push = false): string {
  const jobs = n.of('jobs')
  const f = (name: string): string => n.of(name)
  const tp = trace ? ', traces text[]' : ''
  const tc = trace ? ', trace' : ''
  const tu = trace ? ', traces' : ''
  // Whether a fresh job (fr) goes to the waiting consumer (pk; NULL worker: none).
  const pushed = 'pk.worker IS NOT NULL AND fr.dl = 0 AND fr.rr <= pk.mx AND fr.sz <= 7800'
  return `-- Stores new jobs. Answers only the jobs that were not queued: (ordinal, state of the existing
-- job, its result or error). Enqueues of one queue run at once: a taken id is found by the key
-- (ON CONFLICT waits for a concurrent enqueue of the same id to end).
CREATE OR REPLACE FUNCTION ${f('put')}(q bytea, now_ms bigint, token text, ids bytea[], payloads bytea[], maxa integer[],
  ttls bigint[], delays bigint[], rtos bigint[], notes boolean[]${tp})
RETURNS TABLE(o bigint, state "char", body bytea) LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  base bigint;
  taken bigint;
  nk bigint;
  kd bigint;
  mine bytea[];${push
? `
  pk ${f('parked')};
  kp bigint;
  sent json;`
: ''}
BEGIN
  SELECT count(*), count(*) FILTER (WHERE j.expires_at <= now_ms) INTO taken, nk
  FROM unnest(ids) AS u(id) JOIN ${jobs} j ON j.k = ${f('key')}(q, u.id);
  IF nk > 0 THEN
    -- An id whose result TTL passed is free: the new job replaces the record and its history
    -- (the floors stored first, so that no job pushed out of history comes back).
    PERFORM ${f('lockq')}(q, false);
    PERFORM ${f('trim')}(q, s, now_ms) FROM unnest(ARRAY['c', 'e', 'x']::"char"[]) s;
    PERFORM ${f('forget')}(q, j.id) FROM unnest(ids) AS u(id) JOIN ${jobs} j ON j.k = ${f('key')}(q, u.id) WHERE j.expires_at <= now_ms;
  END IF;
  -- The stamps of the jobs about to be stored (an id enqueued at the same time by someone else
  -- leaves a gap: stamps need only grow).
  SELECT count(*) INTO nk FROM (SELECT DISTINCT u.id FROM unnest(ids) AS u(id)) fi
  WHERE taken = 0 OR NOT EXISTS (SELECT 1 FROM ${jobs} j WHERE j.k = ${f('key')}(q, fi.id));
  IF nk > 0 THEN base := ${f('stamps')}(q, now_ms, nk); END IF;${push
? `
  -- A consumer waiting for the queue (registered by its last claiming call) takes the first ready
  -- jobs right here, leased, in its notice: no wake-up and claim in between.
  IF nk > 0 AND EXISTS (SELECT 1 FROM ${f('parked')} p WHERE p.queue = q)
    AND NOT coalesce((SELECT x.paused FROM ${n.of('queues')} x WHERE x.queue = q), true) THEN
    SELECT p.* INTO pk FROM ${f('parked')} p WHERE p.queue = q AND p.mx > 0 AND p.until > now_ms LIMIT 1 FOR UPDATE SKIP LOCKED;
  END IF;`
: ''}
  WITH inp AS (
    SELECT u.*, CASE WHEN token IS NULL THEN false ELSE bool_or(u.nt) OVER (PARTITION BY u.id) END AS wait
    FROM unnest(ids, payloads, maxa, ttls, delays, rtos, notes${tu}) WITH ORDINALITY AS u(id, payload, ma, ttl, dl, rto, nt${trace ? ', tr' : ''}, o)),
  firsts AS (SELECT DISTINCT ON (i.id) i.* FROM inp i ORDER BY i.id, i.o),
  fresh AS (
    SELECT fi.*, row_number() OVER (ORDER BY fi.o) AS rk${push
? `,
      -- Rank among the ready jobs, and the longest the notice carrying them up to this one can be.
      row_number() OVER (PARTITION BY fi.dl > 0 ORDER BY fi.o) AS rr,
      sum(4 * ((length(fi.id) + 2) / 3) + 4 * ((length(fi.payload) + 2) / 3)${trace ? ' + 6 * coalesce(length(fi.tr), 0)' : ''} + 140)
        OVER (PARTITION BY fi.dl > 0 ORDER BY fi.o) + 4 * ((coalesce(length(pk.worker), 0) + 2) / 3) + 60 AS sz`
: ''} FROM firsts fi
    WHERE taken = 0 OR NOT EXISTS (SELECT 1 FROM ${jobs} j WHERE j.k = ${f('key')}(q, fi.id))),
  ins AS (
${push
? `    INSERT INTO ${jobs} (k, queue, id, state, stamp, pos, payload, created_at, max_attempts, result_ttl, delay, run_timeout,
      due_at, ready_at, entered_at, waiters${tc}, attempts, worker, lease_until, started_at, attempt_started_at)
    SELECT ${f('key')}(q, fr.id), q, fr.id, CASE WHEN fr.dl > 0 THEN 'd' WHEN ${pushed} THEN 'p' ELSE 'q' END::"char", base + fr.rk - 1,
      CASE WHEN fr.dl > 0 OR (${pushed}) THEN NULL ELSE base + fr.rk - 1 END, fr.payload, now_ms, fr.ma, fr.ttl, fr.dl, fr.rto,
      CASE WHEN fr.dl > 0 THEN now_ms + fr.dl ELSE 0 END, now_ms, now_ms, CASE WHEN fr.wait THEN ARRAY[token] END${trace ? ', fr.tr' : ''},
      CASE WHEN ${pushed} THEN 1 ELSE 0 END, CASE WHEN ${pushed} THEN pk.worker ELSE '' END,
      CASE WHEN ${pushed} THEN now_ms + pk.lease ELSE 0 END, CASE WHEN ${pushed} THEN now_ms ELSE 0 END,
      CASE WHEN ${pushed} THEN now_ms ELSE 0 END
    FROM fresh fr
    ON CONFLICT (k) DO NOTHING
    RETURNING ${jobs}.id, ${jobs}.state, ${jobs}.stamp, ${jobs}.payload, ${jobs}.max_attempts, ${jobs}.result_ttl, ${jobs}.run_timeout${tc ? `, ${jobs}.trace` : ''})
  SELECT count(*), count(*) FILTER (WHERE ins.state = 'd'), array_agg(ins.id), count(*) FILTER (WHERE ins.state = 'p'),
    json_agg(json_build_array(${f('b64')}(ins.id), ${f('b64')}(ins.payload), 1, ins.max_attempts, ins.result_ttl, now_ms, ins.run_timeout,
      now_ms, ${trace ? 'ins.trace' : 'NULL'}) ORDER BY ins.stamp) FILTER (WHERE ins.state = 'p')
  INTO nk, kd, mine, kp, sent FROM ins;
  IF kp > 0 THEN
    -- Used up (not deleted: a worker ending its wait learns from it that jobs are on their way).
    UPDATE ${f('parked')} p SET mx = 0 WHERE p.queue = q AND p.worker = pk.worker;
    PERFORM pg_notify('${n.channel}_j' || pk.token, md5(q) || ' ' || json_build_array(${f('b64')}(pk.worker), sent)::text);
  END IF;`
: `    INSERT INTO ${jobs} (k, queue, id, state, stamp, pos, payload, created_at, max_attempts, result_ttl, delay, run_timeout,
      due_at, ready_at, entered_at, waiters${tc})
    SELECT ${f('key')}(q, fr.id), q, fr.id, CASE WHEN fr.dl > 0 THEN 'd' ELSE 'q' END::"char", base + fr.rk - 1,
      CASE WHEN fr.dl > 0 THEN NULL ELSE base + fr.rk - 1 END, fr.payload, now_ms, fr.ma, fr.ttl, fr.dl, fr.rto,
      CASE WHEN fr.dl > 0 THEN now_ms + fr.dl ELSE 0 END, now_ms, now_ms, CASE WHEN fr.wait THEN ARRAY[token] END${trace ? ', fr.tr' : ''}
    FROM fresh fr
    ON CONFLICT (k) DO NOTHING
    RETURNING ${jobs}.id, ${jobs}.state)
  SELECT count(*), count(*) FILTER (WHERE ins.state = 'd'), array_agg(ins.id) INTO nk, kd, mine FROM ins;`}
  IF nk > 0 THEN
${push
? `    PERFORM ${f('count')}(q, ARRAY[nk - kd - kp, kd, kp, 0, 0, 0, 0], ARRAY[nk, 0, 0, 0, 0, 0]);
    IF nk > kd + kp THEN PERFORM pg_notify('${n.channel}_w', md5(q)); END IF;`
: `    PERFORM ${f('count')}(q, ARRAY[nk - kd, kd, 0, 0, 0, 0, 0], ARRAY[nk, 0, 0, 0, 0, 0]);
    IF nk > kd THEN PERFORM pg_notify('${n.channel}_w', md5(q)); END IF;`}
  END IF;
  IF nk = cardinality(ids) THEN RETURN; END IF;
  IF token IS NOT NULL AND true = ANY(notes) THEN
    -- A waiting duplicate of an active job: this instance is told its outcome too.
    UPDATE ${jobs} j SET waiters = coalesce(j.waiters, '{}') || token
    WHERE j.k IN (SELECT ${f('key')}(q, u.id) FROM unnest(ids, notes) AS u(id, nt) WHERE u.nt)
      AND j.state IN ('q', 'd', 'p', 'f') AND NOT (token = ANY(coalesce(j.waiters, '{}')));
  END IF;
  RETURN QUERY
    SELECT u.o, j.state, CASE j.state WHEN 'c' THEN j.result WHEN 'e' THEN j.error END
    FROM (SELECT x.id, x.o, min(x.o) OVER (PARTITION BY x.id) AS first FROM unnest(ids) WITH ORDINALITY AS x(id, o)) u
    JOIN ${jobs} j ON j.k = ${f('key')}(q, u.id)
    WHERE NOT (u.o = u.first AND u.id = ANY(coalesce(mine, '{}')))
    ORDER BY u.o;
END $$;
`
}

/**
 * The data functions. `trace` (migration 2 on): jobs carry a trace context (column `trace`, NULL
 * when none): enqueue takes one per job (`traces`, NULL or shorter when not every job has one)
 * and claims answer it; migration 1 is this without it, as released.
 */
export function dataFunctions (n: Names, trace = false): string {
  const q = n.of('queues')
  const jobs = n.of('jobs')
  const f = (name: string): string => n.of(name)
  const claimed = f('claimed')
  // The meta row ending a claim's answer: no job, the refused settlements and the next due time.
  const meta = (refused: string, nextDue: string): string =>
    `ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ${refused}, ${nextDue}${trace ? ', NULL' : ''})::${claimed}`
  const takeVars = TAKE_VARS
  // Reads the queue row into r (a queue that does not exist: the meta row, `refused` as given),
  // takes this transaction's lane and adopts the jobs enqueued inside callers' transactions.
  const readQueue = (refused: string): string => `  SELECT * INTO r FROM ${q} WHERE queue = q;
  IF NOT FOUND THEN
    RETURN NEXT ${meta(refused, 'NULL')};
    RETURN;
  END IF;
  PERFORM ${f('lane')}(q);
  IF EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q) THEN PERFORM ${f('adopt')}(q, now_ms); END IF;`
  const takeBody = take(n, meta, trace)
  // The extra parameter, column and values of the enqueue functions when jobs carry a trace context.
  const tp = trace ? ', traces text[]' : ''
  const tc = trace ? ', trace' : ''
  const tu = trace ? ', traces' : ''
  return (trace
    ? `
ALTER TYPE ${claimed} ADD ATTRIBUTE trace text;`
    : `
CREATE TYPE ${claimed} AS (id bytea, payload bytea, attempts integer, max_attempts integer, result_ttl bigint,
  created_at bigint, run_timeout bigint, ready_at bigint, refused integer[], next_due bigint);`) + `

${putFunction(n, trace)}
-- Moves jobs enqueued inside callers' transactions (the inbox) into their queue (queue row locked).
CREATE OR REPLACE FUNCTION ${f('adopt')}(q bytea, now_ms bigint) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE a record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q) THEN RETURN; END IF;
  WITH d AS (DELETE FROM ${f('inbox')} WHERE queue = q RETURNING *)
  SELECT array_agg(id ORDER BY seq) AS ids, array_agg(payload ORDER BY seq) AS payloads, array_agg(max_attempts ORDER BY seq) AS maxa,
    array_agg(result_ttl ORDER BY seq) AS ttls, array_agg(delay ORDER BY seq) AS delays, array_agg(run_timeout ORDER BY seq) AS rtos${trace ? ', array_agg(trace ORDER BY seq) AS traces' : ''}
  INTO a FROM d;
  IF a.ids IS NULL THEN RETURN; END IF;
  PERFORM ${f('put')}(q, now_ms, NULL, a.ids, a.payloads, a.maxa, a.ttls, a.delays, a.rtos, array_fill(false, ARRAY[cardinality(a.ids)])${trace ? ', a.traces' : ''});
END $$;

CREATE OR REPLACE FUNCTION ${f('enqueue')}(q bytea, now_ms bigint, token text, ids bytea[], payloads bytea[], maxa integer[],
  ttls bigint[], delays bigint[], rtos bigint[], notes boolean[]${tp})
RETURNS TABLE(o bigint, state "char", body bytea) LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  -- Every job awaited by its caller (enqueueAndWait): what the caller is acknowledged is the
  -- outcome, and the settlement that stores it commits with a WAL flush that carries this
  -- transaction's records too; so this commit need not wait for the disk. A crash before that
  -- flush loses the job, which its caller sees as its wait's timeout.
  IF token IS NOT NULL AND NOT (false = ANY(notes)) THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;
  PERFORM 1 FROM ${q} WHERE queue = q;
  IF NOT FOUND THEN PERFORM ${f('mkq')}(q); END IF;
  PERFORM ${f('lane')}(q);
  IF EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q) THEN PERFORM ${f('adopt')}(q, now_ms); END IF;
  RETURN QUERY SELECT * FROM ${f('put')}(q, now_ms, token, ids, payloads, maxa, ttls, delays, rtos, notes${tu});
END $$;

-- Enqueue inside the caller's transaction: no lane is taken (that would hold it until the caller
-- commits). The jobs wait in the inbox until the next operation on the queue
-- adopts them; the wake-up is sent when the caller commits. Answers the ids that are taken.
CREATE OR REPLACE FUNCTION ${f('enqueue_tx')}(q bytea, now_ms bigint, ids bytea[], payloads bytea[], maxa integer[],
  ttls bigint[], delays bigint[], rtos bigint[]${tp})
RETURNS TABLE(o bigint, state "char", body bytea) LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  RETURN QUERY
    SELECT u.o, j.state, CASE j.state WHEN 'c' THEN j.result WHEN 'e' THEN j.error END
    FROM unnest(ids) WITH ORDINALITY AS u(id, o)
    JOIN ${jobs} j ON j.k = ${f('key')}(q, u.id) AND (j.expires_at IS NULL OR j.expires_at > now_ms)
    ORDER BY u.o;
  INSERT INTO ${f('inbox')} (queue, id, payload, max_attempts, result_ttl, delay, run_timeout${tc})
  SELECT q, u.id, u.payload, u.ma, u.ttl, u.dl, u.rto${trace ? ', u.tr' : ''}
  FROM unnest(ids, payloads, maxa, ttls, delays, rtos${tu}) WITH ORDINALITY AS u(id, payload, ma, ttl, dl, rto${trace ? ', tr' : ''}, o)
  WHERE NOT EXISTS (SELECT 1 FROM ${jobs} j WHERE j.k = ${f('key')}(q, u.id) AND (j.expires_at IS NULL OR j.expires_at > now_ms))
  ORDER BY u.o;
  PERFORM ${f('wake')}(q);
END $$;

CREATE OR REPLACE FUNCTION ${f('claim')}(q bytea, now_ms bigint, w bytea, mx integer, lease bigint)
RETURNS SETOF ${claimed} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
${takeVars}
BEGIN
  -- Nothing to claim: answer without locking or writing anything.
  IF NOT (
    EXISTS (SELECT 1 FROM ${jobs} WHERE queue = q AND state = 'q')
    OR EXISTS (SELECT 1 FROM ${jobs} WHERE queue = q AND state IN ('d', 'f') AND due_at <= now_ms)
    OR EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q)) THEN
    RETURN NEXT ${meta('NULL', `(SELECT j.due_at FROM ${jobs} j WHERE j.queue = q AND j.state IN ('d', 'f') ORDER BY j.due_at LIMIT 1)`)};
    RETURN;
  END IF;
  -- A claim lost in a server crash is harmless (the job is still queued, a settlement of it is
  -- refused): its commit need not wait for the disk.
  PERFORM set_config('synchronous_commit', 'off', true);
${readQueue('NULL')}
${takeBody}
END $$;

-- Applies settlements (types: c complete, e fail, x cancel, r retry, l release; n: ttl or delay),
-- then claims up to mx jobs. The meta row lists the refused settlements (0-based).
CREATE OR REPLACE FUNCTION ${f('settle')}(q bytea, now_ms bigint, w bytea, s_type "char"[], s_id bytea[], s_att integer[],
  s_body bytea[], s_n bigint[], g_key bytea[], g_name bytea[], g_msg bytea[], g_frame bytea[], mx integer, lease bigint)
RETURNS SETOF ${claimed} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
${takeVars}
  acc bigint[];
  kq bigint;
  kf bigint;
  kc bigint;
  ke bigint;
  kx bigint;
  kr bigint;
  tokens text[];
  recs text[];
  oks bigint[];
  crs boolean[];
  rttls bigint[];
BEGIN
  IF cardinality(s_id) = 0 THEN
    RETURN QUERY SELECT * FROM ${f('claim')}(q, now_ms, w, mx, lease);
    RETURN;
  END IF;
${readQueue('(SELECT array_agg(i - 1) FROM generate_series(1, cardinality(s_id)) i)')}
${settleRows(n)}
    PERFORM ${f('count')}(q, ARRAY[kq, 0, -k, kf, kc, ke, kx], ARRAY[0, kc, ke, kr, 0, kx]);
    IF ke > 0 THEN
      INSERT INTO ${f('groups')} (queue, key, name, message, frame)
      SELECT DISTINCT ON (u.gk) q, u.gk, u.gn, u.gm, u.gf FROM unnest(s_type, g_key, g_name, g_msg, g_frame) AS u(t, gk, gn, gm, gf)
      WHERE u.t = 'e' AND u.gk IS NOT NULL
      ON CONFLICT DO NOTHING;
    END IF;
    IF tokens IS NOT NULL THEN PERFORM ${f('notify_done')}(q, tokens, recs); END IF;
    IF kq > 0 THEN PERFORM pg_notify('${n.channel}_w', md5(q)); END IF;
  END IF;
  SELECT array_agg(i - 1 ORDER BY i) INTO v_refused FROM generate_series(1, cardinality(s_id)) i WHERE NOT (i = ANY(coalesce(acc, '{}')));
  promote := mx > 0;
${takeBody}
END $$;

-- Pushes the leases of w's running jobs; answers the ids lost and the ids whose cancel was requested.
CREATE OR REPLACE FUNCTION ${f('extend')}(q bytea, now_ms bigint, w bytea, ids bytea[], lease bigint)
RETURNS TABLE(id bytea, lost boolean) LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  -- Lost in a crash, a lease extension is made again by the next heartbeat.
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
    WITH up AS (
      UPDATE ${jobs} j SET lease_until = now_ms + lease
      FROM unnest(ids) AS u(id) WHERE j.k = ${f('key')}(q, u.id) AND j.state = 'p' AND j.worker = w
      RETURNING j.id, j.cancel_requested)
    SELECT u.id, up.id IS NULL FROM unnest(ids) WITH ORDINALITY AS u(id, o) LEFT JOIN up ON up.id = u.id
    WHERE up.id IS NULL OR up.cancel_requested
    ORDER BY u.o;
END $$;

-- cancel (mode 'c') or abort (mode 'a') of one job.
CREATE OR REPLACE FUNCTION ${f('cancel')}(q bytea, now_ms bigint, jid bytea, mode "char", ttl bigint) RETURNS text LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  r ${q};
  j ${jobs};
BEGIN
  r := ${f('lockq')}(q, false);
  IF r.queue IS NULL THEN RETURN 'not_found'; END IF;
  PERFORM ${f('adopt')}(q, now_ms);
  PERFORM ${f('lane')}(q);
  SELECT * INTO j FROM ${jobs} x WHERE x.k = ${f('key')}(q, jid) AND (x.expires_at IS NULL OR x.expires_at > now_ms) FOR UPDATE;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  IF j.state IN ('c', 'e', 'x') THEN RETURN 'completed'; END IF;
  IF j.state = 'p' THEN
    IF mode = 'c' THEN RETURN 'processing'; END IF;
    UPDATE ${jobs} SET cancel_requested = true WHERE k = ${f('key')}(q, jid);
    PERFORM pg_notify('${n.channel}_a', md5(q) || ' ' || ${f('b64')}(jid));
    RETURN 'aborting';
  END IF;
  -- cancel: no result cache (getStatus answers null, the id is free at once), still in history.
  PERFORM ${f('finish')}(q, jid, j.state, 'x', '', NULL, NULL, CASE WHEN mode = 'c' THEN 0 ELSE ttl END, now_ms, NULL);
  RETURN 'cancelled';
END $$;

CREATE OR REPLACE FUNCTION ${f('ttl')}(q bytea, now_ms bigint, jid bytea, ttl bigint) RETURNS text LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE s "char";
BEGIN
  SELECT state INTO s FROM ${jobs} WHERE k = ${f('key')}(q, jid) AND (expires_at IS NULL OR expires_at > now_ms) FOR UPDATE;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  IF s NOT IN ('c', 'e', 'x') THEN RETURN 'not_terminal'; END IF;
  UPDATE ${jobs} SET expires_at = now_ms + ttl WHERE k = ${f('key')}(q, jid);
  RETURN 'updated';
END $$;

-- Recovers expired leases in (lease deadline, id) order; then deletes up to 1,000 records whose
-- result cache expired and that left history (the meta row, id NULL, counts them).
CREATE OR REPLACE FUNCTION ${f('recover')}(q bytea, now_ms bigint, max_stalls integer, err bytea, gk bytea, gname bytea,
  gmsg bytea, gframe bytea)
RETURNS TABLE(id bytea, failed boolean, swept bigint) LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  r ${q};
  j record;
  woke boolean := false;
  gone bigint;
BEGIN
  r := ${f('lockq')}(q, false);
  IF r.queue IS NULL THEN RETURN; END IF;
  PERFORM ${f('lane')}(q);
  -- A job being settled right now is skipped (its lease is being ended anyway).
  FOR j IN SELECT x.id, x.attempts, x.max_attempts, x.stalls, x.cancel_requested, x.result_ttl, x.history, x.attempt_started_at, x.worker
    FROM ${jobs} x WHERE x.queue = q AND x.state = 'p' AND x.lease_until <= now_ms ORDER BY x.lease_until, x.id FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE ${jobs} SET stalls = stalls + 1 WHERE k = ${f('key')}(q, j.id);
    PERFORM ${f('count')}(q, '{0,0,0,0,0,0,0}', '{0,0,0,0,1,0}');
    IF j.cancel_requested THEN
      PERFORM ${f('finish')}(q, j.id, 'p', 'x', 'stalled', NULL, NULL, j.result_ttl, now_ms, NULL);
    ELSIF j.attempts >= j.max_attempts OR j.stalls + 1 > max_stalls THEN
      IF gk IS NOT NULL THEN
        INSERT INTO ${f('groups')} (queue, key, name, message, frame) VALUES (q, gk, gname, gmsg, gframe) ON CONFLICT DO NOTHING;
      END IF;
      PERFORM ${f('finish')}(q, j.id, 'p', 'e', 'stalled', NULL, err, j.result_ttl, now_ms, gk);
      id := j.id; failed := true; swept := NULL;
      RETURN NEXT;
    ELSE
      UPDATE ${jobs} SET history = ${f('hpush')}(j.history, j.attempts, j.attempt_started_at, now_ms, j.worker, 'stalled', NULL)
      WHERE k = ${f('key')}(q, j.id);
      PERFORM ${f('requeue')}(q, j.id, 'p', now_ms, now_ms);
      woke := true;
      id := j.id; failed := false; swept := NULL;
      RETURN NEXT;
    END IF;
  END LOOP;
  IF woke THEN PERFORM ${f('wake')}(q); END IF;
  PERFORM ${f('trim')}(q, s, now_ms) FROM unnest(ARRAY['c', 'e', 'x']::"char"[]) s;
  SELECT * INTO r FROM ${q} WHERE queue = q;
  WITH g AS (
    SELECT x.ctid FROM ${jobs} x WHERE x.queue = q AND x.state IN ('c', 'e', 'x') AND x.expires_at <= now_ms
      AND x.stamp < ${f('hfloor')}(r, x.state, now_ms)
    ORDER BY x.expires_at LIMIT 1000),
  d AS (DELETE FROM ${jobs} x USING g WHERE x.ctid = g.ctid RETURNING 1)
  SELECT count(*) INTO gone FROM d;
  DELETE FROM ${f('groups')} g WHERE g.queue = q AND gone > 0
    AND NOT EXISTS (SELECT 1 FROM ${jobs} x WHERE x.queue = q AND x.state = 'e' AND x.grp = g.key);
  id := NULL; failed := NULL; swept := gone;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION ${f('lock')}(lname bytea, lowner bytea, now_ms bigint, ttl bigint) RETURNS boolean LANGUAGE sql AS $$
INSERT INTO ${f('locks')} AS l (name, owner, until) VALUES (lname, lowner, now_ms + ttl)
ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until WHERE l.until <= now_ms OR l.owner = EXCLUDED.owner
RETURNING true $$;

CREATE OR REPLACE FUNCTION ${f('heartbeat')}(q bytea, now_ms bigint, wid bytea, whost bytea, wpid integer, wconc integer,
  wrun integer, wstart bigint, ttl bigint) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  IF ttl <= 0 THEN
    DELETE FROM ${f('workers')} WHERE queue = q AND id = wid;
    RETURN;
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM 1 FROM ${q} WHERE queue = q;
  IF NOT FOUND THEN PERFORM ${f('mkq')}(q); END IF;
  DELETE FROM ${f('workers')} WHERE queue = q AND expires_at <= now_ms AND id <> wid;
  INSERT INTO ${f('workers')} AS x (queue, id, host, pid, concurrency, running, started_at, last_seen, expires_at)
  VALUES (q, wid, whost, wpid, wconc, wrun, wstart, now_ms, now_ms + ttl)
  ON CONFLICT (queue, id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency,
    running = EXCLUDED.running, started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at;
END $$;
`
}
