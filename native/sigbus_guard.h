// tensorcast native kernel: copies out of (or into) a file mapping that survive the file shrinking under
// them. Touching a mapped page past a file's end raises SIGBUS, which would kill the process; inside a
// guarded region it ends the region instead, and the caller reports a short read.
#ifndef TENSORCAST_SIGBUS_GUARD_H
#define TENSORCAST_SIGBUS_GUARD_H
#include <setjmp.h>

/** Installs the process-wide handler once (chaining to any handler installed before). */
void tc_sigbus_guard_install(void);

/** The calling thread's landing point while it runs a guarded region; NULL outside of one. */
extern __thread sigjmp_buf* tc_sigbus_landing;

/*
 * Runs BODY; when it touches a page past the end of a mapped file, jumps out and sets FAULTED to 1.
 * Locals that BODY changes and the caller reads afterwards must be volatile.
 */
#define TC_SIGBUS_GUARDED(FAULTED, BODY)  \
  do {                                    \
    sigjmp_buf tc_jb_;                    \
    if (sigsetjmp(tc_jb_, 1) == 0) {      \
      tc_sigbus_landing = &tc_jb_;        \
      BODY;                               \
      tc_sigbus_landing = NULL;           \
    } else {                              \
      tc_sigbus_landing = NULL;           \
      (FAULTED) = 1;                      \
    }                                     \
  } while (0)

#endif
