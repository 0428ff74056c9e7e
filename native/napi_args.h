// tensorcast native kernel: argument checks and coded errors shared by the Node-API entry points.
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

// An Error with `code` (a TC_ERR_* string) and `message`, for a promise to reject with.
static inline napi_value coded_error(napi_env env, const char* code, const char* message) {
  napi_value c, m, e;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &e);
  return e;
}

#endif
