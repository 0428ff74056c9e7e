// Baseline for the gather benchmark: a plain C memcpy-per-row strided gather over pre-faulted memory.
// Usage: gather_baseline ROW_BYTES STRIDE ROWS REPEATS -> prints the best GB/s over REPEATS runs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  size_t row = strtoull(argv[1], 0, 10), stride = strtoull(argv[2], 0, 10), rows = strtoull(argv[3], 0, 10);
  int repeats = atoi(argv[4]);
  unsigned char* src = malloc((rows - 1) * stride + row);
  unsigned char* dst = malloc(rows * row);
  if (!src || !dst) return 1;
  memset(src, 1, (rows - 1) * stride + row);
  memset(dst, 0, rows * row);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t = now();
    const unsigned char* s = src;
    unsigned char* d = dst;
    for (size_t i = 0; i < rows; i++, s += stride, d += row) memcpy(d, s, row);
    t = now() - t;
    if (t < best) best = t;
  }
  volatile unsigned char sink = dst[rows * row - 1];
  (void)sink;
  printf("%.6f\n", (double)rows * row / best / 1e9);
  return 0;
}
