/**
 * Decimal digits written straight into a Buffer. The reply path formats millions of numbers a second;
 * building strings for them costs 15-20% of the put path (performance.md §6).
 */

/** Number of decimal digits of a non-negative safe integer. */
export function digitCount(n: number): number {
  if (n < 10) return 1;
  if (n < 100) return 2;
  if (n < 1000) return 3;
  if (n < 10000) return 4;
  if (n < 100000) return 5;
  if (n < 1000000) return 6;
  let d = 7;
  for (let x = Math.floor(n / 1000000); x >= 10; x = Math.floor(x / 10)) d++;
  return d;
}

/** Number of bytes {@link writeDecimal} writes for the safe integer `n` (a sign included). */
export function decimalLength(n: number): number {
  return n < 0 ? 1 + digitCount(-n) : digitCount(n);
}

/** Writes a safe integer (may be negative) in decimal at `pos`; returns the position after it. */
export function writeDecimal(target: Buffer, pos: number, n: number): number {
  if (n < 0) {
    target[pos++] = 0x2d; // '-'
    n = -n;
  }
  const end = pos + digitCount(n);
  let p = end;
  do {
    const q = Math.floor(n / 10);
    target[--p] = 0x30 + (n - q * 10);
    n = q;
  } while (n > 0);
  return end;
}

/** Writes ASCII text at `pos`; returns the position after it. */
export function writeAscii(target: Buffer, pos: number, text: string): number {
  return pos + target.write(text, pos, 'latin1');
}
