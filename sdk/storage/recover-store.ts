/**
 * The local recover store of one `<topic>@<group>`: messages whose handler kept failing wait here, on local disk,
 * for the consumer's redelivery loop. Every change is fdatasync'ed before its promise resolves, so what `add`
 * acknowledged survives a crash, and so do attempt counts.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import type { Message } from '../message.js';
import { Journal, type JournalOptions } from './journal.js';
import { ATTEMPTS_OFFSET, decodeRecoverRecord, encodeRecoverRecord, type RecoveredEntry } from './recover-record.js';

export type { RecoveredEntry } from './recover-record.js';

/**
 * The directory of a topic@group store under `recoverDir`. Both names are URI-encoded, so an `@` inside either
 * stays unambiguous.
 *
 * @example
 * ```ts
 * recoverStoreDir('/home/me/.metaq/recover', 'orders', 'billing'); // '/home/me/.metaq/recover/orders@billing'
 * ```
 */
export function recoverStoreDir(recoverDir: string, topic: string, group: string): string {
  return join(recoverDir, `${encodeURIComponent(topic)}@${encodeURIComponent(group)}`);
}

/**
 * Failed messages of one topic and group, kept on local disk in arrival order until they are redelivered.
 *
 * @example
 * ```ts
 * const store = await RecoverStore.open(recoverDir, 'orders', 'billing', logger);
 * await store.add(message);                                   // after maxFetchRetries failures
 * for await (const entry of store.entries()) {
 *   try { await handle(entry); await store.remove(entry.key); }
 *   catch { if (await store.markAttempt(entry.key) >= 16) await toDeadLetter(entry); }
 * }
 * await store.close();
 * ```
 */
export class RecoverStore {
  /** markAttempt reads then rewrites a record: one at a time, so no count is lost. */
  private attemptChain: Promise<unknown> = Promise.resolve();

  private constructor(readonly topic: string, readonly group: string, private readonly journal: Journal) {}

  /** Opens (creating if needed) the store of `topic`@`group` under `recoverDir`. */
  static async open(recoverDir: string, topic: string, group: string, logger?: Logger,
    options: Omit<JournalOptions, 'logger'> = {}): Promise<RecoverStore> {
    const dir = recoverStoreDir(recoverDir, topic, group);
    const journal = await Journal.open(dir, logger === undefined ? options : { ...options, logger });
    return new RecoverStore(topic, group, journal);
  }

  /** The store's directory. */
  get dir(): string {
    return this.journal.dir;
  }

  /** Number of stored messages. */
  get size(): number {
    return this.journal.size;
  }

  /**
   * Stores a message (its decompressed payload and everything needed to redeliver it) with 0 attempts; resolves
   * with its key once it is durable.
   */
  add(message: Omit<Message<unknown>, 'value'>): Promise<number> {
    return this.journal.append(encodeRecoverRecord(message, Date.now()));
  }

  /** The stored messages in the order they were added; entries removed meanwhile are skipped. */
  async *entries(): AsyncGenerator<RecoveredEntry, void, undefined> {
    for await (const { seq, record } of this.journal.entries()) yield decodeRecoverRecord(seq, record);
  }

  /** The entry `key`, or undefined when it is not stored. */
  async get(key: number): Promise<RecoveredEntry | undefined> {
    const record = await this.journal.read(key);
    return record === undefined ? undefined : decodeRecoverRecord(key, record);
  }

  /**
   * Counts one more redelivery attempt of `key` and persists it; resolves with the new count. Throws
   * InvalidArgumentError when the key is not stored.
   */
  markAttempt(key: number): Promise<number> {
    const run = this.attemptChain.then(() => this.bumpAttempts(key));
    this.attemptChain = run.catch(() => undefined);
    return run;
  }

  /** Removes `key` (durable on resolve); false when it was not stored. */
  remove(key: number): Promise<boolean> {
    return this.journal.remove(key);
  }

  /** Closes the store; later calls fail with ShuttingDownError. */
  async close(): Promise<void> {
    await this.attemptChain;
    await this.journal.close();
  }

  private async bumpAttempts(key: number): Promise<number> {
    const record = await this.journal.read(key);
    if (record === undefined) throw new InvalidArgumentError(`recover store ${this.dir} has no entry ${key}`);
    const copy = Buffer.from(record);
    const attempts = copy.readUInt32BE(ATTEMPTS_OFFSET) + 1;
    copy.writeUInt32BE(attempts, ATTEMPTS_OFFSET);
    if (!(await this.journal.update(key, copy))) {
      throw new InvalidArgumentError(`recover store ${this.dir}: entry ${key} was removed meanwhile`);
    }
    return attempts;
  }
}
