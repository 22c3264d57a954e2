import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as relayq from 'relayq'
import {
  InvalidArgumentError, JobCancelledError, JobFailedError, JobNotFoundError, MaxRetriesError, QueueClosedError,
  QueueError, ResultTTLError, SerdeError, StorageError, TimeoutError
} from '../src/errors.ts'
import { JsonSerde, MsgpackSerde, decodeError, encodeError } from '../src/serde.ts'

test('the package exports exactly the public API, by name', () => {
  assert.deepEqual(Object.keys(relayq).sort(), [
    'Admin', 'Consumer', 'DEFAULTS', 'FileStorage', 'InvalidArgumentError', 'JobCancelledError', 'JobFailedError', 'JobNotFoundError',
    'JobQueueError', 'JsonSerde', 'MaxRetriesError', 'MemoryStorage', 'MsgpackSerde', 'Producer', 'Queue', 'QueueClosedError',
    'QueueError', 'Reaper', 'RedisStorage', 'ResultTTLError', 'SerdeError', 'StorageError', 'TimeoutError', 'contentId',
    'createJsonSerde', 'generateId'
  ])
})

test('every error class has a stable name and code, keeps its cause, and has toJSON()', () => {
  const cause = new Error('root')
  const table: Array<[Error & { code: string, toJSON: () => Record<string, unknown> }, string, string]> = [
    [new QueueError('base', 'SOME_CODE'), 'QueueError', 'SOME_CODE'],
    [new TimeoutError('a', 5), 'TimeoutError', 'TIMEOUT'],
    [new MaxRetriesError('a', 3, cause), 'MaxRetriesError', 'MAX_RETRIES'],
    [new JobNotFoundError('a'), 'JobNotFoundError', 'JOB_NOT_FOUND'],
    [new StorageError('down', cause), 'StorageError', 'STORAGE_ERROR'],
    [new JobCancelledError('a'), 'JobCancelledError', 'JOB_CANCELLED'],
    [new JobFailedError('a', '{"message":"m","code":"E"}'), 'JobFailedError', 'JOB_FAILED'],
    [new InvalidArgumentError('bad', cause), 'InvalidArgumentError', 'INVALID_ARGUMENT'],
    [new ResultTTLError('`0` (number)'), 'TypeError', 'INVALID_ARGUMENT'],
    [new QueueClosedError(), 'QueueClosedError', 'QUEUE_CLOSED'],
    [new SerdeError('undecodable', cause), 'SerdeError', 'SERDE_ERROR']
  ]
  for (const [error, name, code] of table) {
    assert.ok(error instanceof QueueError && error instanceof Error, name)
    assert.equal(error.name, name)
    assert.equal(error.code, code)
    const json = error.toJSON()
    assert.deepEqual([json.name, json.message, json.code, json.stack], [name, error.message, code, error.stack])
    assert.deepEqual(JSON.parse(JSON.stringify(error)), JSON.parse(JSON.stringify(json)))
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
