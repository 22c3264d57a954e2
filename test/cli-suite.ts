/**
 * The command line, on one backend: every command through `relayq` (the built binary as a
 * subprocess for File and Redis; `run()` in-process for a MemoryStorage, which no other process
 * can reach), `-o json` parsed, exit codes, `--dry-run` changing nothing, and an interrupted bulk
 * retry resumed. Each backend's test file calls `cliTests(name, backend)` once.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Admin, Queue } from '../src/index.ts'
import { failureGroup } from '../src/failure-groups.ts'
import { encodeError } from '../src/serde.ts'
import { run } from '../src/cli/run.ts'
import type { AdminStorage } from '../src/storage/types.ts'

export const BIN = join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'cli', 'main.js')

export interface Result { code: number, stdout: string, stderr: string }

/** How a backend's commands run. */
export interface CliBackend {
  /** Runs `relayq args...` against the backend. */
  run (args: readonly string[], options?: { stdin?: string, env?: Record<string, string>, interruptAfterProgress?: boolean }): Promise<Result>
  /** A storage on the same data (for seeding and checking), connected; disconnected after the test. */
  storage (t: TestContext): Promise<AdminStorage>
}

/** `relayq` as a subprocess with RELAYQ_* `env`. With `interruptAfterProgress`, SIGINT once the first progress line is out. */
export async function spawnCli (args: readonly string[], env: Record<string, string>, options: { stdin?: string, interruptAfterProgress?: boolean } = {}): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const first = !stderr.includes('\n')
    stderr += chunk
    if (options.interruptAfterProgress === true && first && stderr.includes('\n')) child.kill('SIGINT')
  })
  child.stdin.end(options.stdin ?? '')
  const [code] = await once(child, 'close') as [number]
  return { code, stdout, stderr }
}

/** `run()` in-process on `storage`; Ctrl-C simulated once the first progress line is out. */
export async function runInProcess (storage: AdminStorage, args: readonly string[], env: Record<string, string>, options: { stdin?: string, interruptAfterProgress?: boolean } = {}): Promise<Result> {
  let stdout = ''
  let stderr = ''
  let interrupt: (() => void) | undefined
  const code = await run(args, {
    stdout: { write: (chunk: string) => { stdout += chunk } },
    stderr: {
      write: (chunk: string) => {
        stderr += chunk
        if (options.interruptAfterProgress === true) interrupt?.()
      }
    },
    stdin: Readable.from([options.stdin ?? '']),
    env: { ...env },
    storage,
    onInterrupt: listener => {
      interrupt = listener
      return () => { interrupt = undefined }
    }
  })
  return { code, stdout, stderr }
}

const STATES = ['queued', 'delayed', 'processing', 'failing', 'completed', 'failed', 'cancelled']

/**
 * Fills queue `q`: `completed` jobs done-1.., `failed` jobs bad-1.. (one failure group), and one
 * delayed job `later`, through the storage as a worker would.
 */
async function seed (storage: AdminStorage, q: string, counts: { completed?: number, failed?: number } = {}): Promise<void> {
  const done = Array.from({ length: counts.completed ?? 3 }, (_, i) => `done-${i + 1}`)
  const bad = Array.from({ length: counts.failed ?? 4 }, (_, i) => `bad-${i + 1}`)
  const job = (id: string, delay = 0): Parameters<AdminStorage['enqueue']>[1][number] => ({ id, payload: Buffer.from(JSON.stringify({ to: `${id}@example.com` })), maxAttempts: 1, resultTTL: 3_600_000, delay })
  for (let i = 0; i < done.length + bad.length; i += 500) {
    const ids = [...done, ...bad].slice(i, i + 500)
    await storage.enqueue(q, ids.map(id => job(id)))
    const claimed = await storage.claim(q, 'seed-worker', { max: ids.length, leaseMs: 60_000, blockMs: 0 })
    const err = new TypeError('bad address')
    await storage.settle(q, 'seed-worker', claimed.map(c => c.id.startsWith('done-')
      ? { type: 'complete' as const, id: c.id, attempt: c.attempts, result: Buffer.from('"sent"'), ttl: 3_600_000 }
      : { type: 'fail' as const, id: c.id, attempt: c.attempts, error: encodeError(err), ttl: 3_600_000, group: failureGroup(err) }), { max: 0, leaseMs: 60_000 })
  }
  await storage.enqueue(q, [job('later', 3_600_000)])
}

function json<T = any> (result: Result): T {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`)
  return JSON.parse(result.stdout) as T
}

export function cliTests (name: string, backend: CliBackend): void {
  describe(`relayq CLI: ${name}`, () => {
    async function setup (t: TestContext): Promise<{ storage: AdminStorage, q: string, counts: () => Promise<Record<string, number>> }> {
      const storage = await backend.storage(t)
      const q = `q-${randomUUID().slice(0, 8)}`
      await seed(storage, q)
      const admin = new Admin({ storage })
      t.after(() => admin.close())
      return { storage, q, counts: async () => (await admin.counts(q)).counts }
    }

    test('status, queues and workers: counts as JSON and NDJSON', async t => {
      const { q } = await setup(t)
      const status = json<Array<{ queue: string, counts: Record<string, number>, paused: boolean, workers: number, oldestWaitingAge: number | null }>>(await backend.run(['status', q, '-o', 'json']))
      assert.deepEqual(status.map(s => [s.queue, s.counts, s.paused, s.workers, s.oldestWaitingAge]), [[q, { queued: 0, delayed: 1, processing: 0, failing: 0, completed: 3, failed: 4, cancelled: 0 }, false, 0, null]])
      const queues = json<Array<{ name: string }>>(await backend.run(['queues', '-o', 'json']))
      assert.ok(queues.some(s => s.name === q))
      const lines = (await backend.run(['status', q, '-o', 'ndjson'])).stdout.trim().split('\n')
      assert.equal(JSON.parse(lines[0]).queue, q)
      assert.equal(lines.length, 1)
      const table = await backend.run(['status', q])
      assert.equal(table.code, 0)
      assert.match(table.stdout, new RegExp(`QUEUE +QUEUED +DELAYED.*\\n${q} +0 +1 +0 +0 +3 +4 +0`))
      assert.deepEqual(json(await backend.run(['workers', q, '-o', 'json'])), [])
    })

    test('jobs ls pages with a cursor, --all streams NDJSON; jobs show has payload and attempts', async t => {
      const { q } = await setup(t)
      const first = json<{ jobs: Array<{ id: string }>, cursor: string }>(await backend.run(['jobs', 'ls', '-q', q, '-s', 'failed', '--limit', '3', '-o', 'json']))
      assert.deepEqual(first.jobs.map(j => j.id), ['bad-4', 'bad-3', 'bad-2'])
      const second = json<{ jobs: Array<{ id: string }>, cursor: string | null }>(await backend.run(['jobs', 'ls', '-q', q, '-s', 'failed', '--limit', '3', '--cursor', first.cursor, '-o', 'json']))
      assert.deepEqual(second.jobs.map(j => j.id), ['bad-1'])
      assert.equal(second.cursor, null)
      const all = await backend.run(['jobs', 'ls', '-q', q, '-s', 'failed', '--limit', '1', '--all', '-o', 'ndjson'])
      assert.deepEqual(all.stdout.trim().split('\n').map(line => JSON.parse(line).id), ['bad-4', 'bad-3', 'bad-2', 'bad-1'])
      const shown = json(await backend.run(['jobs', 'show', '-q', q, 'bad-2', '-o', 'json']))
      assert.deepEqual(shown.payload, { to: 'bad-2@example.com' })
      assert.equal(shown.state, 'failed')
      assert.equal(shown.history.length, 1)
      assert.equal(shown.history[0].outcome, 'failed')
      assert.equal(shown.history[0].error.message, 'bad address')
      const missing = await backend.run(['jobs', 'show', '-q', q, 'nope'])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /nope not found/)
    })

    test('failures, explain, and retry by failure group: --dry-run changes nothing', async t => {
      const { q, counts } = await setup(t)
      const groups = json<Array<{ key: string, count: number, name: string }>>(await backend.run(['failures', q, '-o', 'json']))
      assert.equal(groups.length, 1)
      assert.equal(groups[0].count, 4)
      assert.equal(groups[0].name, 'TypeError')
      const explained = json<{ reasons: Array<{ code: string }> }>(await backend.run(['explain', q, 'later', '-o', 'json']))
      assert.deepEqual(explained.reasons.map(r => r.code), ['delayed', 'no_consumer'])
      const before = await counts()
      const dry = json<{ count: number, dryRun: boolean }>(await backend.run(['jobs', 'retry', '-q', q, '--state', 'failed', '--error-group', groups[0].key, '--dry-run', '-o', 'json']))
      assert.equal(dry.count, 4)
      assert.deepEqual(await counts(), before)
      const done = json<{ count: number, interrupted: boolean }>(await backend.run(['jobs', 'retry', '-q', q, '--state', 'failed', '--error-group', groups[0].key, '-o', 'json']))
      assert.deepEqual([done.count, done.interrupted], [4, false])
      assert.deepEqual(await counts(), { ...before, failed: 0, queued: 4 })
    })

    test('bulk rm needs --yes without a terminal; by ids it does not; cancel, promote and purge', async t => {
      const { q, counts } = await setup(t)
      const refused = await backend.run(['jobs', 'rm', '-q', q, '--state', 'failed'])
      assert.equal(refused.code, 2)
      assert.match(refused.stderr, /--yes/)
      assert.equal((await counts()).failed, 4)
      const one = json<{ count: number, results: Array<{ id: string, result: string }> }>(await backend.run(['jobs', 'rm', '-q', q, 'bad-1', 'ghost', '-o', 'json']))
      assert.deepEqual(one.results, [{ id: 'bad-1', result: 'removed' }, { id: 'ghost', result: 'not_found' }])
      assert.equal(json(await backend.run(['jobs', 'rm', '-q', q, '--state', 'failed', '--yes', '-o', 'json'])).count, 3)
      assert.equal((await counts()).failed, 0)
      // ids from stdin
      assert.equal(json(await backend.run(['jobs', 'promote', '-q', q, '-', '-o', 'json'], { stdin: 'later\n' })).count, 1)
      assert.deepEqual([(await counts()).delayed, (await counts()).queued], [0, 1])
      assert.equal(json(await backend.run(['jobs', 'cancel', '-q', q, 'later', '-o', 'json'])).count, 1)
      assert.equal((await counts()).cancelled, 1)
      assert.equal(json(await backend.run(['queue', 'purge', q, '--state', 'completed', '--dry-run', '-o', 'json'])).count, 3)
      assert.equal((await counts()).completed, 3)
      assert.equal(json(await backend.run(['queue', 'purge', q, '--state', 'completed', '--yes', '-o', 'json'])).count, 3)
      assert.equal((await counts()).completed, 0)
    })

    test('queue pause and resume; doctor finds the paused queue and the waiting jobs with no consumer (exit 3)', async t => {
      const { q } = await setup(t)
      assert.deepEqual(json(await backend.run(['queue', 'pause', q, '-o', 'json'])), { queue: q, paused: true })
      assert.equal(json<Array<{ paused: boolean }>>(await backend.run(['status', q, '-o', 'json']))[0].paused, true)
      const doctor = await backend.run(['doctor', '-o', 'json'])
      assert.equal(doctor.code, 3, doctor.stderr)
      const findings = (JSON.parse(doctor.stdout) as { findings: Array<{ check: string, status: string, queue?: string, fix?: string }> }).findings.filter(f => f.queue === q)
      assert.deepEqual(findings.map(f => [f.check, f.status]), [['paused', 'warn'], ['consumers', 'problem']])
      assert.ok(findings.every(f => typeof f.fix === 'string' && f.fix.length > 0))
      assert.deepEqual(json(await backend.run(['queue', 'resume', q, '-o', 'json'])), { queue: q, paused: false })
      assert.equal(json<Array<{ paused: boolean }>>(await backend.run(['status', q, '-o', 'json']))[0].paused, false)
    })

    test('metrics prints the queue gauges and totals in the Prometheus format', async t => {
      const { q } = await setup(t)
      const result = await backend.run(['metrics', q])
      assert.equal(result.code, 0, result.stderr)
      for (const state of STATES) assert.match(result.stdout, new RegExp(`^relayq_queue_jobs\\{queue="${q}",state="${state}"\\} \\d+$`, 'm'))
      assert.match(result.stdout, new RegExp(`^relayq_queue_jobs\\{queue="${q}",state="failed"\\} 4$`, 'm'))
      assert.match(result.stdout, new RegExp(`^relayq_queue_paused\\{queue="${q}"\\} 0$`, 'm'))
      assert.match(result.stdout, new RegExp(`^relayq_queue_events_total\\{queue="${q}",event="failed"\\} 4$`, 'm'))
      assert.match(result.stdout, /^# TYPE relayq_queue_oldest_job_age_seconds gauge$/m)
    })

    test('enqueue: queued, duplicate, then --wait answers what a consumer returns', async t => {
      const { storage, q } = await setup(t)
      assert.equal(json(await backend.run(['enqueue', q, 'e-1', '--data', '{"n":1}', '-o', 'json'])).status, 'queued')
      assert.deepEqual(json(await backend.run(['enqueue', q, 'e-1', '--data', '{"n":1}', '-o', 'json'])), { queue: q, id: 'e-1', status: 'duplicate', existingState: 'queued' })
      const bad = await backend.run(['enqueue', q, 'e-2', '--data', '{nope'])
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /--data: not JSON/)
      const queue = new Queue<{ n: number }, number>({ storage, name: q, reaper: false })
      queue.execute(async job => job.payload.n * 10)
      await queue.start()
      t.after(() => queue.stop())
      const answer = json<{ status: string, result: number }>(await backend.run(['enqueue', q, 'e-3', '--data', '{"n":4}', '--wait', '--timeout', '20s', '-o', 'json']))
      assert.deepEqual([answer.status, answer.result], ['completed', 40])
    })

    test('an interrupted bulk retry says how far it got, and --resume finishes it', async t => {
      const storage = await backend.storage(t)
      const q = `q-${randomUUID().slice(0, 8)}`
      await seed(storage, q, { completed: 0, failed: 600 })
      const admin = new Admin({ storage })
      t.after(() => admin.close())
      const first = await backend.run(['jobs', 'retry', '-q', q, '--state', 'failed', '--chunk-size', '2', '--progress', '--yes'], { interruptAfterProgress: true })
      assert.equal(first.code, 1, first.stderr)
      const done = Number(/Interrupted: Retried (\d+) of 600 job/.exec(first.stdout)?.[1])
      assert.ok(done > 0 && done < 600, first.stdout)
      const resume = /To resume: relayq (.*)$/m.exec(first.stderr)?.[1]
      assert.ok(resume !== undefined, first.stderr)
      assert.equal((await admin.counts(q)).counts.queued, done)
      const args = resume.split(' ')
      const second = json<{ count: number, interrupted: boolean }>(await backend.run([...args, '-o', 'json']))
      assert.deepEqual([second.count + done, second.interrupted], [600, false])
      const { counts } = await admin.counts(q)
      assert.deepEqual([counts.failed, counts.queued], [0, 600])
    })
  })
}
