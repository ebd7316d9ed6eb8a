/**
 * Which part of a fetched window a filtered `get` may answer with.
 *
 * MetaQ 1.4 answers a filtered get with the accepted records concatenated. Its consumers (and ours) compute the
 * next fetch offset, and each message's offset, as the request offset plus the bytes read from the answer, so a
 * concatenation that left out a record in the middle sends them back to a wrong offset (a duplicate, or the middle
 * of a record). We answer with byte ranges that stay true to the log instead:
 *
 * ```
 * window (whole records, then maybe a cut tail)     answer
 * A A A R A ~                                        value  A A A            (the accepted run at the start)
 * R R A A ~                                          301    offset of the first A (skips the rejected run)
 * R R R ~                                            301    offset + bytes scanned (nothing accepted)
 * ~  (no whole record: a record larger than maxSize)  value  unchanged       (the client grows its fetch size)
 * ```
 *
 * Every answer is a window prefix, so nothing is copied, and any MetaQ consumer follows it: a 301 counts as
 * consumed and is committed. Rejected messages are never sent. The cost is one more round trip each time the
 * stream switches from rejected to accepted.
 */
import { checkRecord } from '../../sdk/protocol/record.js';
import { FilterMessageView, type FilterMessage } from './filter-message.js';

/** A filter as the window scan calls it: never throws; false rejects. */
export interface MessageTest {
  test(message: FilterMessage): boolean;
}

/** What to answer; see the module comment. */
export type WindowVerdict =
  /** `value` with `window[0, bytes)`: `messages` accepted records. */
  | { readonly kind: 'send'; readonly bytes: number; readonly messages: number; readonly final: boolean }
  /** `301` with `offset + bytes`: the rejected records before the first accepted one (or all whole records). */
  | { readonly kind: 'skip'; readonly bytes: number; readonly final: boolean }
  /** `value` with the window as read: it holds no whole record, so there is nothing to filter. */
  | { readonly kind: 'unchanged' };

// Only framing is checked here: the consumer verifies the CRC of what it receives, and a negative length stops the
// scan like a cut tail (the consumer then meets the bad record itself, as it would without a filter).
const ANY_LENGTH = 0x7fff_ffff;
const UNCHANGED: WindowVerdict = { kind: 'unchanged' };

/**
 * Scans the whole records of `window` (log offset `baseOffset`) with `filter` until the answer is known: the scan
 * stops at the first rejected record after an accepted one and at the first accepted one after a rejected one.
 * `final` is true when it stopped so: a longer window would get the same answer. Otherwise the run reached the
 * window's end and a longer window would get a longer answer.
 */
export function filterWindow(
  window: Buffer, baseOffset: number, topic: string, partition: number, filter: MessageTest,
): WindowVerdict {
  const view = new FilterMessageView(window, baseOffset, topic, partition);
  const end = window.length;
  let pos = 0;
  let accepted = 0;
  for (;;) {
    const size = checkRecord(window, pos, end, ANY_LENGTH, false);
    if (size < 0) break;
    view.point(pos, size);
    if (filter.test(view)) {
      if (pos > 0 && accepted === 0) return { kind: 'skip', bytes: pos, final: true };
      accepted++;
    } else if (accepted > 0) {
      return { kind: 'send', bytes: pos, messages: accepted, final: true };
    }
    pos += size;
  }
  if (accepted > 0) return { kind: 'send', bytes: pos, messages: accepted, final: false };
  return pos > 0 ? { kind: 'skip', bytes: pos, final: false } : UNCHANGED;
}
