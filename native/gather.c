// tensorcast native kernel: strided gather (rows of `row_length` bytes, `stride` apart) from one
// typed array into another, bounds-checked, with one memcpy per row. Exposed through Node-API.

#include <node_api.h>
#include "napi_args.h"
#include <stdint.h>
#include <string.h>

static int get_bytes(napi_env env, napi_value v, uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  size_t count;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, &ab, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t*)ptr;
  *length = count;
  return 1;
}

// gather(dst, dstOffset, src, srcOffset, rowLength, stride, rows) -> undefined
static napi_value Gather(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *dst, *src;
  size_t dst_len, src_len;
  int64_t dst_off, src_off, row_len, stride, rows;
  if (argc != 7 || !get_bytes(env, argv[0], &dst, &dst_len) || !get_index(env, argv[1], &dst_off) ||
      !get_bytes(env, argv[2], &src, &src_len) || !get_index(env, argv[3], &src_off) ||
      !get_index(env, argv[4], &row_len) || !get_index(env, argv[5], &stride) || !get_index(env, argv[6], &rows)) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "gather(dst: Uint8Array, dstOffset, src: Uint8Array, srcOffset, rowLength, stride, rows)");
    return NULL;
  }
  if (rows == 0 || row_len == 0) return NULL;
  // Bounds: the last row must end inside src; all rows must fit dst.
  __int128 src_end = (__int128)src_off + (__int128)(rows - 1) * stride + row_len;
  __int128 dst_end = (__int128)dst_off + (__int128)rows * row_len;
  if (src_end > (__int128)src_len || dst_end > (__int128)dst_len) {
    napi_throw_range_error(env, "TC_ERR_SOURCE_RANGE", "gather: rows fall outside the source or destination");
    return NULL;
  }
  const uint8_t* s = src + src_off;
  uint8_t* d = dst + dst_off;
  const size_t rl = (size_t)row_len, st = (size_t)stride;
  for (int64_t r = 0; r < rows; r++) {
    memcpy(d, s, rl);
    d += rl;
    s += st;
  }
  return NULL;
}

napi_value GatherFile(napi_env env, napi_callback_info info);
void tc_register_crc32c(napi_env env, napi_value exports);
void tc_register_shm(napi_env env, napi_value exports);

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "gather", NAPI_AUTO_LENGTH, Gather, NULL, &fn);
  napi_set_named_property(env, exports, "gather", fn);
  napi_create_function(env, "gatherFile", NAPI_AUTO_LENGTH, GatherFile, NULL, &fn);
  napi_set_named_property(env, exports, "gatherFile", fn);
  tc_register_crc32c(env, exports);
  tc_register_shm(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
