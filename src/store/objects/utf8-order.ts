// The order object keys are listed in: UTF-8 byte order, computed on the JS strings without encoding them.

/**
 * Compares two strings in UTF-8 byte order (= code point order). JS compares UTF-16 code units, which
 * differs only when a surrogate (U+D800-U+DFFF, half of a code point above U+FFFF) meets U+E000-U+FFFF.
 *
 * @example keys.sort(compareUtf8)
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
