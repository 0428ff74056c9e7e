// tensorcast native kernel: the Node-API face of CRC32C. `crc32c(data, initial?)` runs on the calling
// thread (a frame of a few MiB costs ~0.2 ms with the instruction path); `crc32cAsync(data, initial?)` runs on
// the libuv pool and holds a reference to `data` until it is done, for callers that must keep their thread free.

#include <node_api.h>
#include "napi_args.h"
#include <stdint.h>
#include <stdlib.h>

#include "crc32c.h"

static int get_bytes(napi_env env, napi_value v, const uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  size_t count;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, &ab, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = (const uint8_t*)ptr;
  *length = count;
  return 1;
}

// Arguments (data: Uint8Array, initial?: uint32); 0 after throwing a TypeError.
static int get_args(napi_env env, napi_callback_info info, napi_value* data, const uint8_t** p, size_t* n, uint32_t* initial) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  *initial = 0;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  int ok = argc >= 1 && get_bytes(env, argv[0], p, n);
  if (ok && t != napi_undefined) {
    double d;
    ok = t == napi_number && napi_get_value_double(env, argv[1], &d) == napi_ok && d >= 0 && d <= 4294967295.0 && d == (double)(uint32_t)d;
    if (ok) *initial = (uint32_t)d;
  }
  if (!ok) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "crc32c(data: Uint8Array, initial?: uint32)");
    return 0;
  }
  *data = argv[0];
  return 1;
}

typedef uint32_t (*kernel_fn)(uint32_t, const uint8_t*, size_t);

// crc32c and crc32cPortable: the same arguments, the kernel passed as the function's data.
static napi_value Crc32c(napi_env env, napi_callback_info info) {
  napi_value data, out;
  const uint8_t* p;
  size_t n;
  uint32_t initial;
  void* kernel;
  napi_get_cb_info(env, info, NULL, NULL, NULL, &kernel);
  if (!get_args(env, info, &data, &p, &n, &initial)) return NULL;
  napi_create_uint32(env, ((kernel_fn)kernel)(initial, p, n), &out);
  return out;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref data_ref;
  const uint8_t* p;
  size_t n;
  uint32_t crc;
} job_t;

static void execute(napi_env env, void* arg) {
  (void)env;
  job_t* j = (job_t*)arg;
  j->crc = tc_crc32c(j->crc, j->p, j->n);
}

static void complete(napi_env env, napi_status status, void* arg) {
  job_t* j = (job_t*)arg;
  napi_value result;
  if (status == napi_ok) {
    napi_create_uint32(env, j->crc, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_reject_deferred(env, j->deferred, coded_error(env, "TC_ERR_ABORTED", "crc32cAsync was cancelled"));
  }
  napi_delete_reference(env, j->data_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value Crc32cAsync(napi_env env, napi_callback_info info) {
  napi_value data, promise, name;
  const uint8_t* p;
  size_t n;
  uint32_t initial;
  if (!get_args(env, info, &data, &p, &n, &initial)) return NULL;
  job_t* j = calloc(1, sizeof(job_t));
  if (j == NULL) {
    napi_throw_error(env, "TC_ERR_INTERNAL", "crc32cAsync: out of memory");
    return NULL;
  }
  j->p = p;
  j->n = n;
  j->crc = initial;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, data, 1, &j->data_ref);
  napi_create_string_utf8(env, "tensorcast.crc32c", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

void tc_register_crc32c(napi_env env, napi_value exports) {
  napi_value fn, flag;
  napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, Crc32c, (void*)tc_crc32c, &fn);
  napi_set_named_property(env, exports, "crc32c", fn);
  napi_create_function(env, "crc32cAsync", NAPI_AUTO_LENGTH, Crc32cAsync, NULL, &fn);
  napi_set_named_property(env, exports, "crc32cAsync", fn);
  napi_create_function(env, "crc32cPortable", NAPI_AUTO_LENGTH, Crc32c, (void*)tc_crc32c_portable, &fn);
  napi_set_named_property(env, exports, "crc32cPortable", fn);
  napi_get_boolean(env, tc_crc32c_hardware(), &flag);
  napi_set_named_property(env, exports, "crc32cHardware", flag);
}
