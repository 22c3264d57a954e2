/**
 * Migration 3: claim and settle-and-claim with less work per call and per job (same signatures,
 * same answers and stamps as migrations 1 and 2; jobs carry a trace context as since migration 2).
 *
 * - One counter update per call: the settlements', promotions' and claim's deltas added up and
 *   written through the lane once (migration 1 wrote the lane row once per step).
 * - The claim finds the ready jobs it locked again by their row address (a locked row cannot
 *   move) instead of a second lookup by key.
 */
import type { Names } from './names.ts'
import { PLANNER } from './schema.ts'
import { settleRows } from './sql-data.ts'

/**
 * Claim and settle, migration 3 (see the file's comment). `push` (migration 5): both take two more
 * parameters, `park` (the caller's instance token, or NULL) and `wait` (ms): a call that leases
 * fewer jobs than it asked for registers its worker in `parked` (up to `wait` ms: as waiting for
 * the rest), so that the next enqueue hands it new jobs at once (see {@link putFunction}); a call
 * that gets all it asked for removes that registration.
 */
export function claimFunctions (n: Names, push = false): string {
  const q = n.of('queues')
  const jobs = n.of('jobs')
  const f = (name: string): string => n.of(name)
  const claimed = f('claimed')
  const meta = (refused: string, nextDue: string): string =>
    `ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ${refused}, ${nextDue}, NULL)::${claimed}`
  const vars = `  r record;
  promote boolean := true;
  base bigint;
  ts tid[];
  k bigint;
  kd bigint;
  ks bytea[];
  got bigint := 0;
  nd bigint;
  v_refused integer[];
  cd bigint[] := '{0,0,0,0,0,0,0}';
  ct bigint[] := '{0,0,0,0,0,0}';`
  const pp = push ? ', park text, wait bigint' : ''
  // Registers the worker as waiting for mx - got more jobs, or removes its registration (push).
  const register = (got: string, quick: boolean): string => push
    ? `
  IF park IS NOT NULL AND mx > 0 THEN
    IF ${got} < mx THEN${quick
      ? `
      -- Lost in a crash, a registration is made again by the next claim.
      PERFORM set_config('synchronous_commit', 'off', true);`
      : ''}
      INSERT INTO ${f('parked')} AS p (queue, worker, token, mx, lease, until) VALUES (q, w, park, mx - ${got}, lease, now_ms + wait)
      ON CONFLICT (queue, worker) DO UPDATE SET token = EXCLUDED.token, mx = EXCLUDED.mx, lease = EXCLUDED.lease, until = EXCLUDED.until;
    ELSE
      DELETE FROM ${f('parked')} p WHERE p.queue = q AND p.worker = w;
    END IF;
  END IF;`
    : ''
  // Adds this call's counter deltas through its lane, once.
  const flush = `  IF cd <> '{0,0,0,0,0,0,0}' OR ct <> '{0,0,0,0,0,0}' THEN PERFORM ${f('count')}(q, cd, ct); END IF;`
  const readQueue = (refused: string): string => `  SELECT * INTO r FROM ${q} WHERE queue = q;
  IF NOT FOUND THEN
    RETURN NEXT ${meta(refused, 'NULL')};
    RETURN;
  END IF;
  PERFORM ${f('lane')}(q);
  IF EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q) THEN PERFORM ${f('adopt')}(q, now_ms); END IF;`
  // Promotes due delayed and failing jobs, then leases up to mx ready ones to w, answers them,
  // then the meta row (the refused settlements and, when fewer than mx were found, the earliest
  // due time).
  const take = `
  IF r.paused THEN
${flush}
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
      cd := ARRAY[cd[1] + k, cd[2] - kd, cd[3], cd[4] + kd - k, cd[5], cd[6], cd[7]];
    END IF;
  END IF;
  IF mx > 0 THEN
    SELECT array_agg(c.t ORDER BY c.pos) INTO ts FROM (
      SELECT j.ctid AS t, j.pos FROM ${jobs} j WHERE j.queue = q AND j.state = 'q' ORDER BY j.pos LIMIT mx FOR UPDATE SKIP LOCKED) c;
    got := coalesce(cardinality(ts), 0);
  END IF;
  IF got > 0 THEN
    base := ${f('stamps')}(q, now_ms, got);
    RETURN QUERY
      WITH o AS (SELECT u.t, u.o FROM unnest(ts) WITH ORDINALITY AS u(t, o)),
      up AS (
        UPDATE ${jobs} j SET state = 'p', attempts = j.attempts + 1, worker = w, lease_until = now_ms + lease,
          attempt_started_at = now_ms, started_at = CASE WHEN j.started_at = 0 THEN now_ms ELSE j.started_at END,
          stamp = base + o.o - 1, entered_at = now_ms, pos = NULL
        FROM o WHERE j.ctid = o.t
        RETURNING j.id, j.payload, j.attempts, j.max_attempts, j.result_ttl, j.created_at, j.run_timeout, j.ready_at, j.stamp, j.trace)
      SELECT up.id, up.payload, up.attempts, up.max_attempts, up.result_ttl, up.created_at, up.run_timeout, up.ready_at,
        NULL::integer[], NULL::bigint, up.trace
      FROM up ORDER BY up.stamp;
    cd := ARRAY[cd[1] - got, cd[2], cd[3] + got, cd[4], cd[5], cd[6], cd[7]];
  END IF;
${flush}${register('got', false)}
  IF got < mx THEN
    SELECT j.due_at INTO nd FROM ${jobs} j WHERE j.queue = q AND j.state IN ('d', 'f') ORDER BY j.due_at LIMIT 1;
  END IF;
  RETURN NEXT ${meta('v_refused', 'nd')};`
  return `
CREATE OR REPLACE FUNCTION ${f('claim')}(q bytea, now_ms bigint, w bytea, mx integer, lease bigint${pp})
RETURNS SETOF ${claimed} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
${vars}
BEGIN
  -- Nothing to claim: answer without locking or writing anything.
  IF NOT (
    EXISTS (SELECT 1 FROM ${jobs} WHERE queue = q AND state = 'q')
    OR EXISTS (SELECT 1 FROM ${jobs} WHERE queue = q AND state IN ('d', 'f') AND due_at <= now_ms)
    OR EXISTS (SELECT 1 FROM ${f('inbox')} WHERE queue = q)) THEN${register('0', true)}
    RETURN NEXT ${meta('NULL', `(SELECT j.due_at FROM ${jobs} j WHERE j.queue = q AND j.state IN ('d', 'f') ORDER BY j.due_at LIMIT 1)`)};
    RETURN;
  END IF;
  -- A claim lost in a server crash is harmless (the job is still queued, a settlement of it is
  -- refused): its commit need not wait for the disk.
  PERFORM set_config('synchronous_commit', 'off', true);
${readQueue('NULL')}
${take}
END $$;

-- Applies settlements (types: c complete, e fail, x cancel, r retry, l release; n: ttl or delay),
-- then claims up to mx jobs. The meta row lists the refused settlements (0-based).
CREATE OR REPLACE FUNCTION ${f('settle')}(q bytea, now_ms bigint, w bytea, s_type "char"[], s_id bytea[], s_att integer[],
  s_body bytea[], s_n bigint[], g_key bytea[], g_name bytea[], g_msg bytea[], g_frame bytea[], mx integer, lease bigint${pp})
RETURNS SETOF ${claimed} LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
${vars}
  acc bigint[];
  kq bigint;
  kf bigint;
  kc bigint;
  ke bigint;
  kx bigint;
  kr bigint;
  tokens text[];
  recs text[];
  nset integer := cardinality(s_id);
  oks bigint[];
  crs boolean[];
  rttls bigint[];
BEGIN
  IF nset = 0 THEN
    RETURN QUERY SELECT * FROM ${f('claim')}(q, now_ms, w, mx, lease${push ? ', park, wait' : ''});
    RETURN;
  END IF;
${readQueue('(SELECT array_agg(i - 1) FROM generate_series(1, cardinality(s_id)) i)')}
${settleRows(n)}
    cd := ARRAY[kq, 0, -k, kf, kc, ke, kx];
    ct := ARRAY[0, kc, ke, kr, 0, kx];
    IF ke > 0 THEN
      INSERT INTO ${f('groups')} (queue, key, name, message, frame)
      SELECT DISTINCT ON (u.gk) q, u.gk, u.gn, u.gm, u.gf FROM unnest(s_type, g_key, g_name, g_msg, g_frame) AS u(t, gk, gn, gm, gf)
      WHERE u.t = 'e' AND u.gk IS NOT NULL
      ON CONFLICT DO NOTHING;
    END IF;
    IF tokens IS NOT NULL THEN PERFORM ${f('notify_done')}(q, tokens, recs); END IF;
    IF kq > 0 THEN PERFORM pg_notify('${n.channel}_w', md5(q)); END IF;
  END IF;
  SELECT array_agg(i - 1 ORDER BY i) INTO v_refused FROM generate_series(1, nset) i WHERE NOT (i = ANY(coalesce(acc, '{}')));
  promote := mx > 0;
${take}
END $$;
`
}
