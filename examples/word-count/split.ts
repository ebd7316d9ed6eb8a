/**
 * The split stage: a sentence tuple in, its words out. The words travel with their tuple (Storm would anchor each
 * word to it), so the tuple can be acked once they are all counted, and not before.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { SpoutTuple } from '../../spout/index.js';

/** A tuple and the words of its sentence. */
export interface SplitSentence {
  readonly tuple: SpoutTuple;
  readonly words: string[];
}

/** Letters, digits and inner apostrophes ("isn't"); everything else separates words. */
const WORD = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu;

/**
 * The words of a sentence, lowercase, in order.
 *
 * @example
 * ```ts
 * splitWords("The fox isn't here, the dog is!"); // ['the', 'fox', "isn't", 'here', 'the', 'dog', 'is']
 * ```
 */
export function splitWords(sentence: string): string[] {
  return sentence.toLowerCase().match(WORD) ?? [];
}

/**
 * Turns each tuple (whose first value is the sentence, a Buffer or a string) into a {@link SplitSentence}.
 *
 * @example
 * ```ts
 * spout.stream().pipe(new SplitStage()).on('data', (s: SplitSentence) => console.log(s.words));
 * ```
 */
export class SplitStage extends Transform {
  constructor() {
    super({ objectMode: true });
  }

  override _transform(tuple: SpoutTuple, _encoding: BufferEncoding, callback: TransformCallback): void {
    const value = tuple.values[0];
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    const out: SplitSentence = { tuple, words: splitWords(text) };
    callback(null, out);
  }
}
