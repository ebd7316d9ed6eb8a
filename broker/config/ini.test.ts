import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../sdk/errors.js';
import { levenshtein, didYouMean } from './did-you-mean.js';
import { evaluateArithmetic } from './expression.js';
import { parseIni } from './ini.js';

describe('config/ini', () => {
  it('reads sections and keys with their line numbers, trimming whitespace and skipping comments', () => {
    const doc = parseIni('\uFEFF; top comment\n[system]\r\n  brokerId = 3  \n# note\n\n[topic=a*]\ndeleteWhen=0 0 6 ? * 6#3\n', 'f.ini');
    assert.deepEqual(doc.sections.map((s) => [s.name, s.line]), [['system', 2], ['topic=a*', 6]]);
    assert.deepEqual(doc.sections[0]!.entries.get('brokerId'), { key: 'brokerId', value: '3', line: 3 });
    // '#' inside a value is data: Quartz uses it for "the third Friday".
    assert.equal(doc.sections[1]!.entries.get('deleteWhen')!.value, '0 0 6 ? * 6#3');
  });

  it('keeps everything after the first = as the value', () => {
    const doc = parseIni('[topic=x]\ngroup.g=a=b\n');
    assert.equal(doc.sections[0]!.entries.get('group.g')!.value, 'a=b');
  });

  const malformed: [string, string, RegExp][] = [
    ['a duplicate key', '[system]\nbrokerId=1\nbrokerId=2\n', /Duplicate key brokerId in \[system\] \(f\.ini:3\), first defined at line 2/],
    ['a duplicate section', '[system]\n[zookeeper]\n[system]\n', /Duplicate section \[system\] \(f\.ini:3\), first defined at line 1/],
    ['a key outside any section', 'brokerId=1\n', /Key brokerId outside any section \(f\.ini:1\)/],
    ['a line without =', '[system]\nbrokerId\n', /Expected 'key=value'.*"brokerId" \(f\.ini:2\)/],
    ['an unclosed section header', '[system\n', /Malformed section header "\[system" \(f\.ini:1\)/],
    ['an empty section name', '[ ]\n', /Empty section name \(f\.ini:1\)/],
    ['a missing key', '[system]\n=3\n', /Missing key before '=' \(f\.ini:2\)/],
  ];
  for (const [what, text, message] of malformed) {
    it(`refuses ${what}, naming file and line`, () => {
      assert.throws(() => parseIni(text, 'f.ini'), (e: unknown) => e instanceof ConfigError && message.test(e.message));
    });
  }
});

describe('config/expression', () => {
  const table: [string, number][] = [
    ['42', 42], [' 1024*1024 ', 1048576], ['(1+2)*3', 9], ['1+2*3', 7], ['10/4', 2], ['-7/2', -3], ['7%3', 1],
    ['-(2+3)', -5], ['--4', 4], ['1_000', 1000], ['0.95', 0.95], ['19/20.0', 0.95], ['1024*1024*1024', 1073741824],
  ];
  for (const [text, value] of table) {
    it(`evaluates ${JSON.stringify(text)} to ${value}`, () => assert.equal(evaluateArithmetic(text), value));
  }
  const bad: [string, RegExp][] = [
    ['', /unexpected end/], ['1+', /unexpected end/], ['(1+2', /missing '\)'/], ['1/0', /division by zero/],
    ['2**3', /unexpected '\*'/], ['process.exit(1)', /unexpected 'p'/], ['1 2', /unexpected '2'/],
    ['9007199254740991*2', /overflow/], ['('.repeat(40) + '1' + ')'.repeat(40), /nested too deeply/],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 20))}`, () => {
      assert.throws(() => evaluateArithmetic(text), (e: unknown) => e instanceof ConfigError && message.test(e.message));
    });
  }
});

describe('config/did-you-mean', () => {
  it('measures edit distance case-insensitively', () => {
    assert.equal(levenshtein('kitten', 'sitting'), 3);
    assert.equal(levenshtein('serverport', 'serverPort'), 0);
    assert.equal(levenshtein('', 'abc'), 3);
  });

  it('suggests the closest candidate only when it is a plausible typo', () => {
    assert.equal(didYouMean('serverPrt', ['serverPort', 'stat']), 'serverPort');
    assert.equal(didYouMean('foobarbazqux', ['serverPort', 'stat']), undefined);
  });
});
