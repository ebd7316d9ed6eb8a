/**
 * Plain-text tables for the cluster commands' human output: left-aligned columns, two spaces apart, numbers
 * right-aligned. No colours or box characters, so the output stays greppable and pastes cleanly.
 *
 * @example
 * ```ts
 * formatTable(['ID', 'MASTER'], [[0, 'meta://10.0.0.7:8123']]);
 * // 'ID  MASTER\n 0  meta://10.0.0.7:8123\n'
 * ```
 */

/** A cell: null prints as `-`. */
export type Cell = string | number | boolean | null;

export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[],
  options: { readonly dropIfEmpty?: readonly string[] } = {}): string {
  // A column such as ERROR says nothing when every row has nothing in it.
  const keep = headers.map((h, i) => !(options.dropIfEmpty ?? []).includes(h) || rows.some((r) => (r[i] ?? null) !== null));
  const cols = headers.map((_, i) => i).filter((i) => keep[i]);
  const text = rows.map((r) => cols.map((i) => cellText(r[i] ?? null)));
  const numeric = cols.map((i) => rows.some((r) => typeof r[i] === 'number') && rows.every((r) => typeof r[i] === 'number' || (r[i] ?? null) === null));
  const widths = cols.map((i, c) => Math.max(headers[i]!.length, ...text.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]): string => cells
    .map((cell, c) => (numeric[c] === true ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
    .join('  ').trimEnd();
  return [line(cols.map((i) => headers[i]!)), ...text.map((r) => line(r))].join('\n') + '\n';
}

function cellText(c: Cell): string {
  if (c === null) return '-';
  if (typeof c === 'boolean') return c ? 'yes' : 'no';
  return String(c);
}
