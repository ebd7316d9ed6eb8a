/**
 * One recover store per client, topic and group, shared by the consumers of that group in the client. A recover
 * journal can be open once per process, and a cluster client may run several members of one group (each owning
 * some partitions): they share the store and its redelivery loop, which hands a stored message to any member still
 * subscribed. The store closes with its last member.
 */
import type { ClientContext } from '../client/client-context.js';
import { ShuttingDownError } from '../errors.js';
import type { Message } from '../message.js';
import { RecoverManager, type RecoverManagerOptions } from './recover-manager.js';
import type { FailedMessageStore } from './topic-subscription.js';

interface Shared {
  /** Made once the previous store of the key (if any) has closed: a journal opens once per process. */
  readonly manager: Promise<RecoverManager<unknown>>;
  readonly redeliverers: Set<(message: Message<unknown>) => Promise<void>>;
}

const shared = new WeakMap<ClientContext, Map<string, Shared>>();
/** Stores of a key still closing (per client). */
const closing = new WeakMap<ClientContext, Map<string, Promise<void>>>();

/**
 * A handle on the recover store of `options.topic`@`options.group` in `options.ctx`: made on first use with these
 * options, joined by later callers (whose `redeliver` is then one more member to hand messages to).
 *
 * @example
 * ```ts
 * const store = sharedRecoverStore({ ctx, topic: 'orders', group: 'billing', ...rest, redeliver });
 * store.start();
 * await store.close();   // the store itself closes with its last handle
 * ```
 */
export function sharedRecoverStore<V>(options: RecoverManagerOptions<V>): FailedMessageStore<V> {
  let byKey = shared.get(options.ctx);
  if (byKey === undefined) shared.set(options.ctx, byKey = new Map());
  let closingByKey = closing.get(options.ctx);
  if (closingByKey === undefined) closing.set(options.ctx, closingByKey = new Map());
  const key = `${options.topic}@${options.group}`;
  let s = byKey.get(key);
  if (s === undefined) {
    const redeliverers = new Set<(message: Message<unknown>) => Promise<void>>();
    const previous = closingByKey.get(key) ?? Promise.resolve();
    const manager = previous.then(() => new RecoverManager<unknown>({
      ...(options as unknown as RecoverManagerOptions<unknown>),
      // The member subscribed longest takes it; with none left the message stays in the store.
      redeliver: (m) => {
        const first = redeliverers.values().next();
        return first.done === true ? Promise.reject(new ShuttingDownError('every consumer of the group')) : first.value(m);
      },
    }));
    s = { manager, redeliverers };
    byKey.set(key, s);
  }
  const closings = closingByKey;
  const mine = options.redeliver as (message: Message<unknown>) => Promise<void>;
  const entry = s;
  entry.redeliverers.add(mine);
  let closed: Promise<void> | undefined;
  return {
    store: async (message) => (await entry.manager).store(message),
    start: () => { void entry.manager.then((m) => m.start()); },
    close: () => {
      closed ??= (async () => {
        entry.redeliverers.delete(mine);
        if (entry.redeliverers.size > 0) return;
        byKey.delete(key);
        const done = entry.manager.then((m) => m.close());
        const settled = done.catch(() => undefined);
        closings.set(key, settled);
        try {
          await done;
        } finally {
          if (closings.get(key) === settled) closings.delete(key);
        }
      })();
      return closed;
    },
  };
}
