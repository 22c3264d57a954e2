import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStorage, type FileStorageOptions } from '../src/index.ts'
import { storageContract } from './storage-contract.ts'
import { queueTests } from './queue-suite.ts'

async function tempDir (): Promise<string> {
  return mkdtemp(join(tmpdir(), 'relayq-file-'))
}

/** A factory for the shared suites: every instance over one fresh directory, removed by cleanup. */
function files (options: Partial<FileStorageOptions> = {}) {
  return async (clock?: () => number) => {
    const basePath = await tempDir()
    const make = (): FileStorage => new FileStorage({ basePath, ...(clock !== undefined && { clock }), ...options })
    return { storage: make(), another: make, cleanup: () => rm(basePath, { recursive: true, force: true }) }
  }
}

storageContract('file', files())
queueTests('file', files())
