/**
 * The operator's functions (migration 1): counts, one chunk of an action (retry, remove, cancel,
 * promote), pause and retention. The reads (pages, details, groups, workers) are plain queries
 * in queries.ts.
 */
import type { Names } from './names.ts'
import { PLANNER } from './schema.ts'

export function adminFunctions (n: Names): string {
  const q = n.of('queues')
  const jobs = n.of('jobs')
  const lanes = n.of('lanes')
  const f = (name: string): string => n.of(name)
  return `
-- Jobs per state (q d p f c e x) at now_ms: the lanes' sums; terminal states count their history
-- from the state index (O(retention count)).
CREATE OR REPLACE FUNCTION ${f('counts')}(q bytea, now_ms bigint) RETURNS bigint[] LANGUAGE plpgsql STABLE ${PLANNER} AS $$
DECLARE
  c bigint[];
  lo bigint;
  s "char";
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ${q} WHERE queue = q) THEN RETURN '{0,0,0,0,0,0,0}'; END IF;
  SELECT ARRAY[coalesce(sum(l.n[1]), 0), coalesce(sum(l.n[2]), 0), coalesce(sum(l.n[3]), 0), coalesce(sum(l.n[4]), 0)]::bigint[]
  INTO c FROM ${lanes} l WHERE l.queue = q;
  FOR i IN 1..3 LOOP
    s := substr('cex', i, 1)::"char";
    lo := ${f('efloor')}(q, s, now_ms);
    c := c || (SELECT count(*) FROM ${jobs} WHERE queue = q AND state = s AND stamp >= lo);
  END LOOP;
  RETURN c;
END $$;

-- Whether an operator action applies to a job in its current state (hist: a terminal job is in history).
CREATE OR REPLACE FUNCTION ${f('applies')}(action text, s "char", hist boolean) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
SELECT CASE action
  WHEN 'retry' THEN s = 'f' OR (s IN ('c', 'e', 'x') AND hist)
  WHEN 'promote' THEN s IN ('d', 'f')
  WHEN 'cancel' THEN s NOT IN ('c', 'e', 'x')
  ELSE s <> 'p' END $$;

-- Acts on one job the action applied to when picked (queue row locked); answers the per-id
-- result ('skipped' when a consumer changed it meanwhile).
CREATE OR REPLACE FUNCTION ${f('act')}(q bytea, now_ms bigint, action text, jid bytea) RETURNS text LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  j ${jobs};
BEGIN
  PERFORM ${f('lane')}(q);
  SELECT * INTO j FROM ${jobs} WHERE k = ${f('key')}(q, jid) FOR UPDATE;
  IF NOT FOUND OR NOT ${f('applies')}(action, j.state, true) THEN RETURN 'skipped'; END IF;
  -- A terminal job leaving its history: the floor is stored first, so that the older jobs it
  -- kept out stay out.
  IF j.state IN ('c', 'e', 'x') AND action IN ('retry', 'remove') THEN PERFORM ${f('trim')}(q, j.state, now_ms); END IF;
  IF action = 'retry' OR action = 'promote' THEN
    IF action = 'retry' THEN
      IF j.state IN ('c', 'e', 'x') THEN
        -- The attempt that ended it joins its history; its waiters were told already.
        IF j.last_outcome <> '' THEN
          j.history := ${f('hpush')}(j.history, j.attempts, j.attempt_started_at, j.finished_at, j.worker, j.last_outcome,
            CASE WHEN j.last_outcome = 'failed' THEN j.error END);
        END IF;
        j.waiters := NULL;
        PERFORM ${f('count')}(q, ${f('delta')}('f', 1), '{0,0,0,0,0,0}');
        j.state := 'f';
      END IF;
      UPDATE ${jobs} SET state = j.state, attempts = 0, stalls = 0, retries = retries + 1, cancel_requested = false,
        result = NULL, error = NULL, expires_at = NULL, last_outcome = '', finished_at = 0, worker = '', grp = NULL,
        waiters = j.waiters, history = j.history
      WHERE k = ${f('key')}(q, jid);
    END IF;
    PERFORM ${f('requeue')}(q, jid, j.state, now_ms, now_ms);
    RETURN CASE action WHEN 'retry' THEN 'retried' ELSE 'promoted' END;
  ELSIF action = 'cancel' THEN
    IF j.state = 'p' THEN
      UPDATE ${jobs} SET cancel_requested = true WHERE k = ${f('key')}(q, jid);
      PERFORM pg_notify('${n.channel}_a', md5(q) || ' ' || ${f('b64')}(jid));
      RETURN 'aborting';
    END IF;
    PERFORM ${f('finish')}(q, jid, j.state, 'x', '', NULL, NULL, j.result_ttl, now_ms, NULL);
    RETURN 'cancelled';
  ELSE
    IF j.state NOT IN ('c', 'e', 'x') AND j.waiters IS NOT NULL THEN
      PERFORM ${f('notify_done')}(q, j.waiters, array_fill(${f('drec')}('x', jid, NULL), ARRAY[cardinality(j.waiters)]));
    END IF;
    PERFORM ${f('forget')}(q, jid);
    RETURN 'removed';
  END IF;
END $$;

-- One chunk of an operator action: on a list of ids, or on the jobs of state st (of failure group
-- gk; that entered it before before_ms) with stamps after after_st and up to until_st.
CREATE OR REPLACE FUNCTION ${f('apply')}(q bytea, now_ms bigint, action text, ids bytea[], st "char", before_ms bigint,
  gk bytea, after_st bigint, until_st bigint, lim integer, dry boolean)
RETURNS TABLE(matched bigint, changed bigint, results text[], next bigint, until bigint) LANGUAGE plpgsql ${PLANNER} AS $$
DECLARE
  r ${q};
  j ${jobs};
  jid bytea;
  hist boolean;
  lo bigint;
  hi bigint;
  picked bytea[];
  res text;
  woke boolean := false;
BEGIN
  r := CASE WHEN dry THEN (SELECT x FROM ${q} x WHERE x.queue = q) ELSE ${f('lockq')}(q, false) END;
  IF r.queue IS NOT NULL AND NOT dry THEN PERFORM ${f('adopt')}(q, now_ms); END IF;
  until := coalesce(CASE WHEN ids IS NULL THEN until_st END, ${f('top')}(q), 0);
  matched := 0;
  results := '{}';
  next := NULL;
  IF ids IS NOT NULL THEN
    FOREACH jid IN ARRAY ids LOOP
      j := NULL;
      IF r.queue IS NOT NULL THEN SELECT * INTO j FROM ${jobs} x WHERE x.k = ${f('key')}(q, jid); END IF;
      hist := j.state IN ('c', 'e', 'x') AND j.stamp >= ${f('efloor')}(q, j.state, now_ms);
      IF j.id IS NULL OR (j.state IN ('c', 'e', 'x') AND NOT hist AND j.expires_at <= now_ms) THEN
        res := 'not_found';
      ELSIF NOT ${f('applies')}(action, j.state, hist) THEN
        res := 'skipped';
      ELSE
        matched := matched + 1;
        IF dry THEN
          res := CASE action WHEN 'retry' THEN 'retried' WHEN 'promote' THEN 'promoted' WHEN 'remove' THEN 'removed'
            ELSE CASE WHEN j.state = 'p' THEN 'aborting' ELSE 'cancelled' END END;
        ELSE
          res := ${f('act')}(q, now_ms, action, jid);
          woke := woke OR res IN ('retried', 'promoted');
        END IF;
      END IF;
      results := results || res;
    END LOOP;
    changed := CASE WHEN dry THEN 0 ELSE matched END;
  ELSE
    results := NULL;
    IF r.queue IS NULL THEN changed := 0; RETURN NEXT; RETURN; END IF;
    lo := CASE WHEN st IN ('c', 'e', 'x') THEN ${f('efloor')}(q, st, now_ms) ELSE -9223372036854775807 END;
    hi := CASE WHEN before_ms IS NULL THEN until ELSE least(until, before_ms * 1000 - 1) END;
    lo := greatest(lo, coalesce(after_st + 1, lo));
    IF dry THEN
      SELECT count(*) INTO matched FROM ${jobs} x
      WHERE x.queue = q AND x.state = st AND x.stamp >= lo AND x.stamp <= hi AND (gk IS NULL OR x.grp = gk);
      changed := 0;
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT array_agg(s.id ORDER BY s.stamp) INTO picked FROM (
      SELECT x.id, x.stamp FROM ${jobs} x
      WHERE x.queue = q AND x.state = st AND x.stamp >= lo AND x.stamp <= hi AND (gk IS NULL OR x.grp = gk)
      ORDER BY x.stamp LIMIT lim + 1) s;
    picked := coalesce(picked, '{}');
    IF cardinality(picked) > lim THEN
      SELECT x.stamp INTO next FROM ${jobs} x WHERE x.k = ${f('key')}(q, picked[lim]);
      picked := picked[1:lim];
    END IF;
    FOREACH jid IN ARRAY picked LOOP
      res := ${f('act')}(q, now_ms, action, jid);
      woke := woke OR res IN ('retried', 'promoted');
    END LOOP;
    matched := cardinality(picked);
    changed := matched;
  END IF;
  IF woke THEN PERFORM ${f('wake')}(q); END IF;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION ${f('pause')}(q bytea, p boolean) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  PERFORM ${f('mkq')}(q);
  UPDATE ${q} SET paused = p WHERE queue = q;
  IF NOT p THEN PERFORM ${f('wake')}(q); END IF;
END $$;

-- Stores the retention (ret: {c age, c count, e age, e count, x age, x count}) and trims what it pushes out.
CREATE OR REPLACE FUNCTION ${f('retain')}(q bytea, now_ms bigint, ret bigint[]) RETURNS void LANGUAGE plpgsql ${PLANNER} AS $$
BEGIN
  PERFORM ${f('lockq')}(q, true);
  -- What aged out under the old rule stays out.
  PERFORM ${f('trim')}(q, s, now_ms) FROM unnest(ARRAY['c', 'e', 'x']::"char"[]) s;
  UPDATE ${q} SET retention = ret WHERE queue = q;
  PERFORM ${f('trim')}(q, s, now_ms) FROM unnest(ARRAY['c', 'e', 'x']::"char"[]) s;
END $$;
`
}
