import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BrokerError, ChecksumMismatchError, DiskFullError, FsyncFailedError, MessageTooLargeError, PartitionClosedError,
  ShuttingDownError, UnknownTopicError, WrongPartitionError,
} from '../errors.js';
import { putError } from './put-errors.js';

const failure = (detail: string): string =>
  `Put message to [broker 'meta://127.0.0.1:8123'] [partition 't-2'] failed.Detail:${detail}`;

describe('sdk/producer/put-errors', () => {
  it('maps each broker failure text to its typed error', () => {
    const table: [number, string, new (...a: never[]) => Error, boolean][] = [
      [500, failure('The server do not accept topic t'), UnknownTopicError, false],
      [500, failure('wrong partition 9 for topic t (it has 4 partitions)'), WrongPartitionError, false],
      [500, failure('wrong partition 9'), WrongPartitionError, false],
      [500, failure('message of 2000000 bytes exceeds maxMessageSize 1048576'), MessageTooLargeError, false],
      [500, failure('message of 2000000 bytes exceeds the limit of 1048576 bytes'), MessageTooLargeError, false],
      [403, failure('partition[0-2] has been closed'), PartitionClosedError, false],
      [500, failure('disk full at /data: used space above diskMaxUsedRatio'), DiskFullError, true],
      [500, failure('partition t-2 refuses writes after a failed write or fsync'), FsyncFailedError, false],
      [500, failure('Checksum failure,message may be corrupted: sent 1, computed 2'), ChecksumMismatchError, false],
      [500, failure('message store is shutting down'), ShuttingDownError, true],
      [503, 'thread pool busy', BrokerError, true],
      [504, 'timeout', BrokerError, true],
      [500, failure('something else'), BrokerError, false],
    ];
    for (const [code, body, type, retriable] of table) {
      const e = putError(code, body, 't', 2);
      assert.ok(e instanceof type, `${body} -> ${e.name}`);
      assert.equal(e.retriable, retriable, body);
    }
  });

  it('keeps the numbers the broker reported', () => {
    const wrong = putError(500, failure('wrong partition 9 for topic t (it has 4 partitions)'), 't', 9) as WrongPartitionError;
    assert.equal(wrong.partition, 9);
    assert.equal(wrong.numPartitions, 4);
    const large = putError(500, failure('message of 2000000 bytes exceeds maxMessageSize 1048576'), 't', 0) as MessageTooLargeError;
    assert.equal(large.size, 2000000);
    assert.equal(large.limit, 1048576);
  });
});
