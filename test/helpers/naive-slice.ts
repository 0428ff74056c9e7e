// A deliberately simple reference slicer: element by element, for checking the compiler and executor.

/** Selects `box` ([start, length] per dimension) of a row-major tensor with `elemBytes`-byte elements. */
export function naiveSlice(
  data: Uint8Array,
  shape: readonly number[],
  elemBytes: number,
  box: readonly (readonly [number, number])[],
): Uint8Array {
  const count = box.reduce((n, [, l]) => n * l, 1);
  const out = new Uint8Array(count * elemBytes);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const idx = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < count; e++) {
    let rem = e;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = (rem % box[d]![1]) + box[d]![0];
      rem = Math.floor(rem / box[d]![1]);
    }
    const src = idx.reduce((n, v, d) => n + v * strides[d]!, 0) * elemBytes;
    out.set(data.subarray(src, src + elemBytes), e * elemBytes);
  }
  return out;
}
