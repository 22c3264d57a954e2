#!/usr/bin/env node
/** The `relayq` binary: runs the command line with this process's streams and sets the exit code. */
import { run } from './run.ts'

const code = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })
process.exitCode = code
// A connection that lingers (a reconnect timer) must not keep a finished command alive.
setTimeout(() => process.exit(code), 2000).unref()
