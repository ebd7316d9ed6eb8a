import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../sdk/errors.js';
import { parseCron } from './cron.js';

const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number => new Date(y, mo - 1, d, h, mi, s).getTime();

describe('store/cron', () => {
  const table: [string, number, number | null][] = [
    ['0 0 6,18 * * ?', at(2024, 3, 10, 5, 59, 59), at(2024, 3, 10, 6)],
    ['0 0 6,18 * * ?', at(2024, 3, 10, 6), at(2024, 3, 10, 18)],
    ['0 0 6,18 * * ?', at(2024, 12, 31, 18, 0, 1), at(2025, 1, 1, 6)],
    ['*/15 * * * * ?', at(2024, 1, 1, 0, 0, 14), at(2024, 1, 1, 0, 0, 15)],
    ['0 5-10/5 * * * ?', at(2024, 1, 1, 0, 6), at(2024, 1, 1, 0, 10)],
    ['0 0 12 ? * MON-FRI', at(2024, 6, 8, 13), at(2024, 6, 10, 12)],        // Saturday → Monday
    ['0 0 0 1 JAN,JUL ?', at(2024, 2, 1), at(2024, 7, 1)],
    ['0 0 0 29 2 ?', at(2023, 3, 1), at(2024, 2, 29)],                       // leap day
    ['0 0 0 31 * ?', at(2024, 4, 1), at(2024, 5, 31)],                       // skips April
    ['0 0 0 ? * 1', at(2024, 6, 4), at(2024, 6, 9)],                         // 1 = Sunday
    ['0 30 1 1 1 ? 2030', at(2024, 1, 1), at(2030, 1, 1, 1, 30)],
    ['0 0 0 1 1 ? 2020', at(2024, 1, 1), null],
  ];
  for (const [expr, after, want] of table) {
    it(`fires "${expr}" after ${new Date(after).toString().slice(0, 24)} at the expected time`, () => {
      assert.equal(parseCron(expr).next(after), want);
    });
  }

  it('refuses malformed expressions with a ConfigError naming the field', () => {
    for (const bad of ['0 0 6 * *', '61 * * * * ?', '0 0 25 * * ?', '0 0 0 L * ?', '0 0 0 1 * MON', '0 0 0 ? * 2#1', 'a b c d e f', '0 0 0 ? * 5-2', '0 */0 * * * ?']) {
      assert.throws(() => parseCron(bad), ConfigError, bad);
    }
    assert.throws(() => parseCron('0 0 25 * * ?'), /hours/);
  });
});
