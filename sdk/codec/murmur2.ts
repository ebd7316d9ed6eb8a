/**
 * MurmurHash2 as Kafka's Java client (`Utils.murmur2`) and kafkajs's default partitioner compute it, so a key lands
 * on the same partition number from any of them: `toPositive(murmur2(key)) % numPartitions`.
 * Strings hash as their UTF-8 bytes. 32-bit arithmetic with Math.imul gives Java's int overflow exactly.
 */

const SEED = 0x9747b28c | 0;
const M = 0x5bd1e995;

// Short string keys are encoded into this scratch buffer instead of a new Buffer per call. A UTF-16 code unit
// takes at most 3 UTF-8 bytes, so a key of up to SCRATCH_SIZE / 3 units always fits.
const SCRATCH_SIZE = 768;
const scratch = Buffer.allocUnsafe(SCRATCH_SIZE);

/**
 * The murmur2 hash of `key` as a signed 32-bit integer, equal to Kafka's Java `Utils.murmur2(bytes)` and kafkajs's.
 *
 * @example
 * ```ts
 * murmur2('21');                                    // -973932308
 * const partition = toPositive(murmur2('customer-7')) % 4;
 * ```
 */
export function murmur2(key: Buffer | string): number {
  if (typeof key !== 'string') return murmur2Bytes(key, key.length);
  if (key.length * 3 <= SCRATCH_SIZE) return murmur2Bytes(scratch, scratch.write(key, 0, 'utf8'));
  const data = Buffer.from(key, 'utf8');
  return murmur2Bytes(data, data.length);
}

function murmur2Bytes(data: Uint8Array, length: number): number {
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest !== 0) {
    if (rest === 3) h ^= data[whole + 2]! << 16;
    if (rest >= 2) h ^= data[whole + 1]! << 8;
    h ^= data[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * Clears the sign bit, as Kafka's `Utils.toPositive`: unlike `Math.abs` it maps every int, even -2^31, into
 * [0, 2^31).
 *
 * @example
 * ```ts
 * toPositive(-973932308); // 1173551340
 * ```
 */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}
