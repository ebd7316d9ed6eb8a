import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError, intField, presentField, stringField } from './params.js';

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === 400 && message.test(e.message));
}

describe('http/params', () => {
  it('reads integers in range and falls back only when the field is absent or empty', () => {
    assert.equal(intField({ n: '42' }, 'n', 0, 100), 42);
    assert.equal(intField({ n: '-1' }, 'n', -1, 100), -1);
    assert.equal(intField({}, 'n', 0, 100, 7), 7);
    assert.equal(intField({ n: '' }, 'n', 0, 100, 7), 7);
  });

  it('names the field for each malformed integer', () => {
    const table: [unknown, RegExp][] = [
      [undefined, /^missing query field n$/],
      ['', /^missing query field n$/],
      ['x', /^field n must be an integer, got "x"$/],
      ['1.5', /must be an integer/],
      ['1e3', /must be an integer/],
      [' 1', /must be an integer/],
      ['0x10', /must be an integer/],
      ['12345678901234567', /must be an integer/],
      [['1', '2'], /must be an integer/],
      ['101', /^field n must be in 0\.\.100, got 101$/],
      ['-1', /^field n must be in 0\.\.100, got -1$/],
    ];
    for (const [value, message] of table) refused(() => intField({ n: value }, 'n', 0, 100), message);
  });

  it('names the field of a missing or repeated string', () => {
    assert.equal(stringField({ topic: 't' }, 'topic'), 't');
    assert.equal(presentField({ group: '' }, 'group'), '');
    refused(() => stringField({}, 'topic'), /^missing query field topic$/);
    refused(() => stringField({ topic: '' }, 'topic'), /^missing query field topic$/);
    refused(() => stringField({ topic: ['a', 'b'] }, 'topic'), /^field topic must be given once/);
    refused(() => presentField({}, 'group'), /^missing query field group$/);
  });
});
