import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTable } from './table.js';

describe('cli/cluster/table', () => {
  it('right-aligns number columns, prints null as - and booleans as yes/no', () => {
    assert.equal(formatTable(['ID', 'URL', 'ALIVE', 'LAG'], [[0, 'meta://a:1', true, 1200], [10, null, false, null]]),
      'ID  URL         ALIVE   LAG\n' +
      ' 0  meta://a:1  yes    1200\n' +
      '10  -           no        -\n');
  });

  it('left-aligns a column with no number in it and drops an optional column nobody filled', () => {
    assert.equal(formatTable(['P', 'OWNER', 'ERROR'], [['0-1', null, null]], { dropIfEmpty: ['ERROR'] }), 'P    OWNER\n0-1  -\n');
    assert.equal(formatTable(['P', 'ERROR'], [['0-1', null], ['0-2', 'down']], { dropIfEmpty: ['ERROR'] }),
      'P    ERROR\n0-1  -\n0-2  down\n');
  });

  it('prints only the header for no rows', () => {
    assert.equal(formatTable(['GROUP', 'LAG'], []), 'GROUP  LAG\n');
  });
});
