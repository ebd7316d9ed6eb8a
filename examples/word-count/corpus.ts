/**
 * A seeded corpus of sentences for the word-count example: the same seed gives the same sentences, so the counts a
 * run should reach can be computed beside it. Each sentence comes with the words it holds (lowercase, in order), so a
 * checker needs no tokenizer of its own.
 */

/** One generated sentence: its text (capitalized, with punctuation) and its words. */
export interface Sentence {
  readonly text: string;
  readonly words: readonly string[];
}

const VOCABULARY = [
  'the', 'a', 'quick', 'lazy', 'brown', 'fox', 'dog', 'jumps', 'over', 'under', 'river', 'stone', 'broker', 'queue',
  'message', 'spout', 'storm', 'partition', 'offset', 'commit', 'replay', 'crash', 'again', 'never', 'twice', 'once',
  'counts', 'words', 'night', 'morning', 'light', 'dark', "isn't", 'blue', 'green', 'red', 'old', 'new', 'and', 'or',
] as const;

const ENDINGS = ['.', '!', '?', '...'] as const;

/**
 * mulberry32, the same as sdk/protocol/seeded-rng.ts: an example imports only the SDK's public entry, and a test's PRNG
 * has no place in the SDK's API, so the example keeps its own eight lines.
 */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` sentences of 3 to 12 words from a small vocabulary (Zipf-like: early words are more frequent), with a
 * capital first letter, commas now and then, and an ending mark.
 *
 * @example
 * ```ts
 * for (const s of sentences(7, 3)) console.log(s.text, s.words);
 * ```
 */
export function* sentences(seed: number, count: number): Generator<Sentence> {
  const next = seededRandom(seed);
  for (let i = 0; i < count; i++) {
    const n = 3 + Math.floor(next() * 10);
    const words: string[] = [];
    let text = '';
    for (let j = 0; j < n; j++) {
      // Squaring skews the pick toward the head of the vocabulary, as in real text.
      const word = VOCABULARY[Math.floor(next() * next() * VOCABULARY.length)]!;
      words.push(word);
      const shown = j === 0 ? word[0]!.toUpperCase() + word.slice(1) : word;
      text += j === 0 ? shown : (next() < 0.1 ? ', ' : ' ') + shown;
    }
    text += ENDINGS[Math.floor(next() * ENDINGS.length)]!;
    yield { text, words };
  }
}

/**
 * The counts the corpus should produce: word -> occurrences.
 *
 * @example
 * ```ts
 * expectedCounts(sentences(7, 100)).get('fox');
 * ```
 */
export function expectedCounts(corpus: Iterable<Sentence>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of corpus) for (const w of s.words) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}
