/**
 * Which partition a change goes to. Order is kept per partition, so the key decides what stays ordered: one row
 * (`primary-key`, the default), one table (`table`), or everything (`single`). DDL is sent to every partition, so that
 * each partition sees a table's DDL between the same rows as the binlog did.
 */
import { murmur2, toPositive, type Partition, type PartitionSelectorOption } from '../../sdk/index.js';

export const PartitionModes = { primaryKey: 'primary-key', table: 'table', single: 'single' } as const;
export type PartitionMode = (typeof PartitionModes)[keyof typeof PartitionModes];

/** Keys starting with NUL name a partition index directly (DDL copies, `single` mode); no SQL identifier starts so. */
const INDEX_KEY_MARK = '\u0000';

export function indexKey(index: number): string {
  return `${INDEX_KEY_MARK}${index}`;
}

/** The partition key of a row change. */
export function rowKey(mode: PartitionMode, schema: string, table: string, primaryKey: Record<string, unknown> | null): string {
  if (mode === PartitionModes.single) return indexKey(0);
  if (mode === PartitionModes.table || primaryKey === null) return `${schema}.${table}`;
  return `${schema}.${table}:${JSON.stringify(Object.values(primaryKey))}`;
}

/**
 * A producer partitioner: index keys pick `partitions[i % n]`, other keys `murmur2(key) % n` (the SDK's `hash`).
 * `seen` learns the partition count of each topic (the DDL broadcast needs it).
 */
export function binlogPartitioner(seen: Map<string, number>): PartitionSelectorOption {
  return (topic: string, partitions: readonly Partition[], record: { readonly key?: string | Buffer }): Partition => {
    const n = partitions.length;
    seen.set(topic, n);
    const key = record.key ?? '';
    const i = typeof key === 'string' && key.startsWith(INDEX_KEY_MARK)
      ? Number(key.slice(1)) % n
      : toPositive(murmur2(key)) % n;
    return partitions[i]!;
  };
}
