import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const child = fileURLToPath(new URL('./fixtures/failing-consumer-child.ts', import.meta.url))

test('a started consumer keeps its process alive while every storage call fails, retrying until stopped', async t => {
  const proc = spawn(process.execPath, ['--import', 'tsx', child], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(proc, 'exit')
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  // Three failed claims: the consumer retried twice after its pause, so the process did not exit
  // after the first failure (an unref'd retry timer let it end with code 0).
  let errors = 0
  let output = ''
  for await (const chunk of proc.stdout) {
    output += String(chunk)
    errors = output.split('\n').filter(line => line === 'error').length
    if (errors >= 3) break
  }
  assert.equal(proc.exitCode, null, `the consumer process exited (${String(proc.exitCode)}) after ${errors} errors`)
  assert.ok(errors >= 3)
})
