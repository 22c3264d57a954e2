/**
 * Directories written by an earlier build open with this one: test/fixtures/file-main/ holds a
 * FileStorage directory (a snapshot and log frames after it) written by main before the slimmer
 * job record (issue 9), and what that build read from it. This build must read the same and work
 * the queue to the same end. Regenerate with test/fixtures/file-main-make.ts (see its doc).
 */
import assert from 'node:assert/strict'
import { cpSync, readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { FileStorage } from '../src/index.ts'
import { queueDir } from '../src/storage/file/paths.ts'
import { dump, read } from './fixtures/file-main-read.ts'

const FIXTURE = fileURLToPath(new URL('./fixtures/file-main/', import.meta.url))

test('file: a directory written by main before the slimmer record (snapshot, then log) reads and works to the same end', async t => {
  const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { now: number }
  const dir = await mkdtemp(join(tmpdir(), 'relayq-format-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  cpSync(join(FIXTURE, 'data'), dir, { recursive: true })
  assert.ok(readdirSync(queueDir(dir, 'q')).some(f => f.startsWith('snap-')), 'the fixture has a snapshot')
  let now = expected.now
  const storage = new FileStorage({ basePath: dir, clock: () => now, watch: false })
  await storage.connect()
  t.after(() => storage.disconnect())
  const got = JSON.parse(JSON.stringify(await read(storage, () => now, ms => { now += ms }), dump))
  assert.deepEqual(got, expected)
})
