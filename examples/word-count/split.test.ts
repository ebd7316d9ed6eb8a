import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sentences } from './corpus.js';
import { splitWords } from './split.js';

describe('examples/word-count/split', () => {
  it('lowercases and drops punctuation but keeps inner apostrophes', () => {
    assert.deepEqual(splitWords("The fox isn't here,  the DOG is!... 'quoted' 42"),
      ['the', 'fox', "isn't", 'here', 'the', 'dog', 'is', 'quoted', '42']);
    assert.deepEqual(splitWords(' ,.!? '), []);
  });

  it('finds in each corpus sentence exactly the words the corpus says it holds', () => {
    for (const s of sentences(12345, 2000)) assert.deepEqual(splitWords(s.text), s.words, s.text);
  });
});
