/**
 * The count stage: the words of one sentence in, their tally out, keyed by where the message lives
 * (`<partition>@<offset>`). That key, not the tuple id, is what the sink de-duplicates on: a replay after a crash is
 * the same message at the same offset, whatever tuple carries it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { partitionName } from '../../sdk/index.js';
import type { SpoutTuple } from '../../spout/index.js';
import type { SplitSentence } from './split.js';

/** One message's contribution to the counts, with the tuple to ack once it is durable. */
export interface CountedSentence {
  readonly tuple: SpoutTuple;
  /** `<partition>@<offset>`, e.g. `0-2@1534`. */
  readonly msg: string;
  readonly words: ReadonlyMap<string, number>;
}

/**
 * The key of a message for de-duplication: its partition and offset (unique in a topic, stable across replays).
 *
 * @example
 * ```ts
 * messageKey(tuple.message); // '0-2@1534'
 * ```
 */
export function messageKey(m: SpoutTuple['message']): string {
  return `${partitionName(m.partition)}@${m.offset}`;
}

/**
 * Tallies each sentence's words into a {@link CountedSentence}.
 *
 * @example
 * ```ts
 * split.pipe(new CountStage()).on('data', (c: CountedSentence) => console.log(c.msg, c.words));
 * ```
 */
export class CountStage extends Transform {
  constructor() {
    super({ objectMode: true });
  }

  override _transform(s: SplitSentence, _encoding: BufferEncoding, callback: TransformCallback): void {
    const words = new Map<string, number>();
    for (const w of s.words) words.set(w, (words.get(w) ?? 0) + 1);
    const out: CountedSentence = { tuple: s.tuple, msg: messageKey(s.tuple.message), words };
    callback(null, out);
  }
}
