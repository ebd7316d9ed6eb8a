import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import {
  defaultDeserializer, defaultSerializer, Deserializers, Serializers, type Deserializer, type Serializer,
} from './serializers.js';

/** Calls a serializer with a value its type does not allow, as untyped callers can. */
const callUntyped = <V>(s: Serializer<V>, value: unknown): Buffer => s(value as V);

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

describe('codec/serializers', () => {
  it('passes a Buffer through the buffer serializer without copying', () => {
    const b = Buffer.from('bytes');
    assert.equal(Serializers.buffer(b), b);
  });

  it('views a plain Uint8Array as a Buffer over the same memory', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const out = Serializers.buffer(backing.subarray(1, 4));
    assert.ok(Buffer.isBuffer(out));
    assert.deepEqual([...out], [1, 2, 3]);
    out[0] = 7;
    assert.equal(backing[1], 7);
  });

  it('refuses anything but bytes in the buffer serializer, saying what it got', () => {
    throwsInvalid(() => callUntyped(Serializers.buffer, 42), /the buffer serializer expects a Buffer, got a number/);
    throwsInvalid(() => callUntyped(Serializers.buffer, 'text'), /expects a Buffer, got a string/);
    throwsInvalid(() => callUntyped(Serializers.buffer, null), /got null/);
    throwsInvalid(() => callUntyped(Serializers.buffer, { a: 1 }), /got an object \(Object\)/);
  });

  it('encodes strings as UTF-8 and refuses other values in the string serializer', () => {
    assert.deepEqual([...Serializers.string('é☃')], [...Buffer.from('é☃', 'utf8')]);
    assert.equal(Serializers.string('').length, 0);
    throwsInvalid(() => callUntyped(Serializers.string, Buffer.from('x')),
      /the string serializer expects a string, got an object \(Buffer\)/);
    throwsInvalid(() => callUntyped(Serializers.string, undefined), /expects a string, got undefined$/);
  });

  it('takes Buffers as they are and strings as UTF-8 by default', () => {
    const b = Buffer.from([0, 255]);
    assert.equal(defaultSerializer(b), b);
    assert.equal(defaultSerializer('héllo').toString('utf8'), 'héllo');
    throwsInvalid(() => callUntyped(defaultSerializer, 12.5),
      /the default serializer expects a Buffer or a string, got a number/);
    throwsInvalid(() => callUntyped(defaultSerializer, [1, 2]), /got an array/);
  });

  it('round-trips JSON values through the json serializer and deserializer', () => {
    for (const value of [{ id: 7, items: ['a', 'ü'], nested: { ok: true } }, [1, 2], 'text', 3.5, null, false]) {
      assert.deepEqual(Deserializers.json(Serializers.json(value)), value);
    }
  });

  it('refuses values JSON cannot encode, with the cause', () => {
    throwsInvalid(() => Serializers.json(undefined), /the json serializer cannot encode undefined$/);
    throwsInvalid(() => Serializers.json(() => 1), /cannot encode a function/);
    throwsInvalid(() => Serializers.json(10n), /cannot encode a bigint: TypeError/);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.throws(() => Serializers.json(cyclic), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.ok(e.cause instanceof TypeError);
      return true;
    });
  });

  it('names the payload size and topic when JSON cannot be parsed', () => {
    const payload = Buffer.from('{"broken":');
    throwsInvalid(() => Deserializers.json(payload, { topic: 'orders', attribute: null }),
      /the json deserializer cannot parse the 10-byte payload of a message of topic orders: SyntaxError/);
    throwsInvalid(() => Deserializers.json(payload), /cannot parse the 10-byte payload: SyntaxError/);
  });

  it('gives the payload itself by default and UTF-8 text with the string deserializer', () => {
    const payload = Buffer.from('żółw');
    assert.equal(defaultDeserializer(payload), payload);
    assert.equal(Deserializers.string(payload), 'żółw');
  });

  it('fits the json deserializer to any value type without a cast', () => {
    const orders: Deserializer<{ id: number }> = Deserializers.json;
    assert.equal(orders(Buffer.from('{"id":7}')).id, 7);
  });

  it('accepts plain one-argument functions as deserializers', () => {
    const asNumber: Deserializer<number> = (payload) => payload.readUInt8(0);
    assert.equal(asNumber(Buffer.from([42]), { topic: 't', attribute: 'a' }), 42);
  });
});
