// tensorcast native kernel: the SIGBUS handler behind TC_SIGBUS_GUARDED (sigbus_guard.h). A fault raised by
// a thread inside a guarded region jumps back to that region's landing point; any other SIGBUS goes to the
// handler that was installed before, or kills the process as it would have without this one.

#define _GNU_SOURCE
#include "sigbus_guard.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

__thread sigjmp_buf* tc_sigbus_landing = NULL;

static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t* info, void* context) {
  sigjmp_buf* landing = tc_sigbus_landing;
  if (landing != NULL) siglongjmp(*landing, 1);
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != NULL) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
  } else {
    // Not ours and nobody else's: die of it, as without this handler.
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
  }
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

void tc_sigbus_guard_install(void) { pthread_once(&once, install); }
