// tensorcast native kernel: argument checks shared by the Node-API entry points.
#ifndef TENSORCAST_NAPI_ARGS_H
#define TENSORCAST_NAPI_ARGS_H
#include <limits.h>
#include <node_api.h>
#include <stdint.h>

// A non-negative integer below 2^53 (an offset, a length, a count); 0 when `v` is anything else.
static inline int get_index(napi_env env, napi_value v, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

// A file descriptor: an index that fits an int (a larger number must not wrap onto another fd).
static inline int get_fd(napi_env env, napi_value v, int64_t* out) { return get_index(env, v, out) && *out <= INT_MAX; }

#endif
