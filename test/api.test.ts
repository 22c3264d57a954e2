import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as relayq from 'relayq'
import {
  InvalidArgumentError, JobCancelledError, JobFailedError, JobNotFoundError, MaxRetriesError, QueueClosedError,
  QueueError, StorageError, TimeoutError
} from '../src/errors.ts'
import { JsonSerde, MsgpackSerde, decodeError, encodeError } from '../src/serde.ts'

test('the package exports exactly the public API, by name', () => {
  assert.deepEqual(Object.keys(relayq).sort(), [
    'Consumer', 'DEFAULTS', 'FileStorage', 'InvalidArgumentError', 'JobCancelledError', 'JobFailedError', 'JobNotFoundError',
    'JobQueueError', 'JsonSerde', 'MaxRetriesError', 'MemoryStorage', 'MsgpackSerde', 'PgStorage', 'Producer', 'Queue', 'QueueClosedError',
    'QueueError', 'Reaper', 'RedisStorage', 'StorageError', 'TimeoutError', 'contentId', 'createJsonSerde', 'generateId'
  ])
})

test('every error class has a stable name and code and keeps its cause', () => {
  const cause = new Error('root')
  const table: Array<[QueueError, string, string]> = [
    [new TimeoutError('a', 5), 'TimeoutError', 'ERR_RELAYQ_TIMEOUT'],
    [new JobFailedError('a', 'm', 'E'), 'JobFailedError', 'ERR_RELAYQ_JOB_FAILED'],
    [new JobCancelledError('a'), 'JobCancelledError', 'ERR_RELAYQ_JOB_CANCELLED'],
    [new MaxRetriesError('a', 3, cause), 'MaxRetriesError', 'ERR_RELAYQ_MAX_RETRIES'],
    [new JobNotFoundError('a'), 'JobNotFoundError', 'ERR_RELAYQ_JOB_NOT_FOUND'],
    [new StorageError('down', cause), 'StorageError', 'ERR_RELAYQ_STORAGE'],
    [new InvalidArgumentError('bad', cause), 'InvalidArgumentError', 'ERR_RELAYQ_INVALID_ARGUMENT'],
    [new QueueClosedError(), 'QueueClosedError', 'ERR_RELAYQ_CLOSED']
  ]
  for (const [error, name, code] of table) {
    assert.ok(error instanceof QueueError && error instanceof Error)
    assert.equal(error.name, name)
    assert.equal(error.code, code)
  }
  assert.equal(new StorageError('down', cause).cause, cause)
  assert.equal(new MaxRetriesError('a', 3, cause).cause, cause)
})

test('serdes round-trip values and refuse what they cannot encode', () => {
  for (const serde of [new JsonSerde(), new MsgpackSerde()]) {
    for (const value of [0, 'text', [1, { a: null }], { nested: { deep: true } }, undefined]) {
      assert.deepEqual(serde.deserialize(serde.serialize(value)), value)
    }
    assert.throws(() => serde.serialize(() => 1))
  }
  assert.throws(() => new JsonSerde().serialize(1n))
})

test('handler errors survive encoding with message, name and code', () => {
  const decoded = decodeError(encodeError(Object.assign(new TypeError('nope'), { code: 'E_NOPE' })))
  assert.equal(decoded.message, 'nope')
  assert.equal(decoded.name, 'TypeError')
  assert.equal(decoded.code, 'E_NOPE')
  assert.equal(decodeError(encodeError('a string')).message, 'a string')
  assert.equal(decodeError(Buffer.from('not json')).message, 'not json')
})
