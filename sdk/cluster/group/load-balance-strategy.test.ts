import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sortAsStrings } from '../../protocol/zk/zk-layout.js';
import { consistentHashStrategy, ketamaHash } from './consistent-hash-strategy.js';
import { loadBalanceStrategy } from './load-balance-strategy.js';
import { rangeStrategy } from './range-strategy.js';
import { rng } from '../../protocol/seeded-rng.js';

const parts = (n: number, brokers = 1): string[] =>
  sortAsStrings(Array.from({ length: brokers }, (_, b) => Array.from({ length: n }, (__, p) => `${b}-${p}`)).flat());
const consumers = (n: number): string[] => sortAsStrings(Array.from({ length: n }, (_, i) => `g_c${i}`));


describe('cluster/group/range-strategy', () => {
  it('gives 4 consumers of 10 partitions 3, 3, 2 and 2 partitions', () => {
    const cs = consumers(4);
    const ps = Array.from({ length: 10 }, (_, i) => `p${i}`);
    assert.deepEqual(cs.map((c) => rangeStrategy('t', c, cs, ps).length), [3, 3, 2, 2]);
    assert.deepEqual(rangeStrategy('t', cs[1]!, cs, ps), ['p3', 'p4', 'p5']);
  });

  it('gives 3 consumers of 10 partitions 4, 3 and 3 contiguous partitions covering all', () => {
    const cs = consumers(3);
    const ps = parts(10);
    const got = cs.map((c) => rangeStrategy('t', c, cs, ps));
    assert.deepEqual(got.map((g) => g.length), [4, 3, 3]);
    assert.deepEqual(got.flat(), ps);
  });

  it('gives an unknown consumer nothing and a consumer beyond the partitions nothing', () => {
    assert.deepEqual(rangeStrategy('t', 'g_x', consumers(2), parts(4)), []);
    const cs = consumers(5);
    assert.deepEqual(rangeStrategy('t', cs[4]!, cs, parts(3)), []);
  });

  it('follows the string order of partition names, so 0-10 comes before 0-2', () => {
    const ps = parts(12);
    assert.deepEqual(ps.slice(0, 4), ['0-0', '0-1', '0-10', '0-11']);
    const cs = consumers(2);
    assert.deepEqual(rangeStrategy('t', cs[0]!, cs, ps), ['0-0', '0-1', '0-10', '0-11', '0-2', '0-3']);
  });
});

describe('cluster/group/consistent-hash-strategy', () => {
  it('hashes and assigns exactly as MetaQ\'s Java ConsisHashStrategy does', () => {
    // Golden values computed with MetaQ's Java code (HashAlgorithm.KETAMA_HASH, the TreeMap ring) on JDK 17.
    assert.equal(ketamaHash('0-0'), 53638855);
    const cs = ['g_a', 'g_b', 'g_c'];
    const java = '0-0=g_b 0-1=g_a 0-2=g_a 0-3=g_a 0-4=g_b 0-5=g_c 0-6=g_a 0-7=g_c 0-8=g_c 0-9=g_b 0-10=g_a 0-11=g_b';
    const ps = Array.from({ length: 12 }, (_, i) => `0-${i}`);
    const ours = ps.map((p) => `${p}=${cs.find((c) => consistentHashStrategy('t', c, cs, ps).includes(p))}`).join(' ');
    assert.equal(ours, java);
  });

  it('assigns every partition to exactly one consumer', () => {
    for (const [c, p, b] of [[1, 4, 1], [3, 10, 2], [10, 12, 3], [7, 64, 4]] as const) {
      const cs = consumers(c);
      const ps = parts(p, b);
      const owned = cs.flatMap((x) => consistentHashStrategy('t', x, cs, ps));
      assert.deepEqual(sortAsStrings(owned), ps, `${c} consumers, ${p * b} partitions`);
    }
    assert.deepEqual(consistentHashStrategy('t', 'g_x', consumers(3), parts(8)), []);
  });

  it('moves only about P/C partitions when a consumer joins', () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
    const random = rng(seed);
    let moved = 0;
    let expected = 0;
    for (let round = 0; round < 20; round++) {
      const c = 2 + Math.floor(random() * 8);
      const ps = parts(16 + Math.floor(random() * 48), 1 + Math.floor(random() * 3));
      const before = Array.from({ length: c }, (_, i) => `g_${Math.floor(random() * 1e9)}-${i}`);
      const after = sortAsStrings([...before, `g_new-${Math.floor(random() * 1e9)}`]);
      const owner = (cs: string[]): Map<string, string> =>
        new Map(cs.flatMap((x) => consistentHashStrategy('t', x, sortAsStrings(cs), ps).map((p) => [p, x] as const)));
      const o1 = owner(before);
      const o2 = owner(after);
      const m = ps.filter((p) => o1.get(p) !== o2.get(p)).length;
      // Every partition that moved went to the newcomer: nothing moves between old members.
      for (const p of ps) if (o1.get(p) !== o2.get(p)) assert.match(o2.get(p)!, /^g_new-/, `seed ${seed}`);
      moved += m;
      expected += ps.length / (c + 1);
    }
    // On average the newcomer takes its fair share; allow generous slack for ring variance.
    assert.ok(moved < expected * 1.6 && moved > expected * 0.4, `seed ${seed}: moved ${moved}, fair share ${expected.toFixed(1)}`);
    // The range strategy moves far more for the same change (the contrast that justifies the option).
  });

  it('is chosen by name, and an unknown name is refused', () => {
    assert.equal(loadBalanceStrategy('consistent-hash'), consistentHashStrategy);
    assert.equal(loadBalanceStrategy('range'), rangeStrategy);
    assert.throws(() => loadBalanceStrategy('round-robin'), /loadBalanceStrategy must be one of range, consistent-hash/);
  });
});
