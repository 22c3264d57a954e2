import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

test('a program that only uses the queue loads neither prom-client nor @opentelemetry (nor the CLI)', async () => {
  const script = fileURLToPath(new URL('./fixtures/loaded-modules.mjs', import.meta.url))
  const { stdout } = await run(process.execPath, [script])
  const { app, metrics } = JSON.parse(stdout) as { app: string[], metrics: string[] }
  assert.ok(app.some(url => url.endsWith('/dist/index.js')), 'the hook saw the package load')
  for (const url of app) assert.doesNotMatch(url, /prom-client|@opentelemetry|\/dist\/(cli|metrics|tracing)\//, url)
  // The positive control: importing relayq/metrics does load prom-client.
  assert.ok(metrics.some(url => url.includes('/prom-client/')), metrics.join('\n'))
})
