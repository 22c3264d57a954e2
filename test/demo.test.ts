import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

test('the README\'s demo (npm start) runs on MemoryStorage, tells each step and exits 0', async t => {
  const demo = fileURLToPath(new URL('../examples/demo.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', demo], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const [code] = await exited
  assert.equal(code, 0, out)
  for (const line of ['rpc-3: 3 + 10 = 13', 'batch done', 'failing   flaky: attempt 1', 'flaky answered 42', 'enqueue rpc-1 again: {"status":"completed","result":11}', 'state=completed, attempts=2, result=42', 'failed jobs: report-7 (upstream down for report-7)', 'failure group', 'retried 1 job(s) of that group', 'report-7 is now completed, result 7', 'queue stopped']) {
    assert.ok(out.includes(line), `missing "${line}" in:\n${out}`)
  }
})
