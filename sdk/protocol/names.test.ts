import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { groupNameProblem, topicNameProblem, topicPatternProblem } from './names.js';

describe('protocol/names', () => {
  it('accepts plain topic names', () => {
    for (const t of ['orders', 'meta-test', 'a.b_c-1', '0', 'T']) assert.equal(topicNameProblem(t), undefined, t);
  });

  it('refuses topic names that are not plain file names', () => {
    for (const t of ['', '.', '..', '../escape', 'nested/dir', '.hidden', '-x', 'a b', 'a*', 'a\\b', 'x'.repeat(201)]) {
      assert.ok(topicNameProblem(t) !== undefined, JSON.stringify(t));
    }
  });

  it('follows MetaQ for group names', () => {
    assert.equal(groupNameProblem('billing-group_1'), undefined);
    assert.equal(groupNameProblem(' '), 'Blank group');
    assert.match(groupNameProblem('a.b') ?? '', /contains "\."/);
    assert.match(groupNameProblem('a b') ?? '', /contains/);
  });
});

test('topic patterns allow * where a topic name would not, and nothing else more', () => {
  assert.equal(topicPatternProblem('*'), undefined);
  assert.equal(topicPatternProblem('app.*'), undefined);
  assert.equal(topicPatternProblem('orders'), undefined);
  assert.match(topicPatternProblem('a/*') ?? '', /invalid topic pattern/);
  assert.match(topicPatternProblem('.*') ?? '', /invalid topic pattern/);
  assert.match(topicPatternProblem('../x') ?? '', /invalid topic name/);
});
