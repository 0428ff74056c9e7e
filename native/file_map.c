// tensorcast native kernel: a file's pages lent as memory, and a strided gather that runs off the event
// loop. `mapFile(fd, position, length)` maps that range read-only and returns a handle; `lendMapped(handle,
// offset, length)` returns part of it as an ArrayBuffer. The pages stay mapped while the handle or any
// lent ArrayBuffer is alive (a reference count; the last one to be collected unmaps), so no view can
// outlive them. The daemon sends contiguous parts of a view straight from these pages (one copy, into
// the socket) instead of reading them into a buffer first. mmap itself does no I/O; a page not in the page
// cache is read when first touched (callers touch them on the libuv pool first: `gatherAsync` copies rows
// out of such pages there, the CRC32C of a lent frame is computed there).

#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  void* map;
  size_t map_length;
  /** The file's byte at `position` (mapFile's argument), and the bytes mapped from there. */
  uint8_t* data;
  size_t length;
  /** The handle plus every lent ArrayBuffer still alive. Only touched on the JS thread. */
  int64_t refs;
} mapping_t;

typedef struct {
  mapping_t* mapping;
  size_t length;
} lent_t;

static void release(mapping_t* m) {
  if (--m->refs > 0) return;
  munmap(m->map, m->map_length);
  free(m);
}

static void release_handle(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  release((mapping_t*)data);
}

static void release_lent(napi_env env, void* data, void* hint) {
  (void)data;
  lent_t* l = (lent_t*)hint;
  int64_t ignored;
  // Gives back what lendMapped took off V8's external-memory count (V8 takes it off again as the buffer goes).
  napi_adjust_external_memory(env, (int64_t)l->length, &ignored);
  release(l->mapping);
  free(l);
}

static int get_index(napi_env env, napi_value v, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

static napi_value fail(napi_env env, const char* code, const char* message) {
  napi_value c, m, e;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &e);
  napi_throw(env, e);
  return NULL;
}

// mapFile(fd, position, length) -> a handle on the file's bytes [position, position + length), mapped.
napi_value MapFile(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, position, length;
  if (argc != 3 || !get_index(env, argv[0], &fd) || !get_index(env, argv[1], &position) || !get_index(env, argv[2], &length) ||
      length < 1 || fd > 0x7fffffff) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "mapFile(fd, position, length >= 1)");
    return NULL;
  }
  struct stat st;
  if (fstat((int)fd, &st) != 0) {
    char text[128];
    snprintf(text, sizeof text, "fstat failed: %s", strerror(errno));
    return fail(env, "TC_ERR_IO", text);
  }
  // Pages past the end of the file would fault (SIGBUS) when touched: refuse up front.
  if (position + length > (int64_t)st.st_size) return fail(env, "TC_ERR_SHORT_READ", "file ends before the range to map");
  long page = sysconf(_SC_PAGESIZE);
  int64_t start = position - (position % page);
  size_t span = (size_t)(position + length - start);
  void* map = mmap(NULL, span, PROT_READ, MAP_SHARED, (int)fd, (off_t)start);
  if (map == MAP_FAILED) {
    char text[128];
    snprintf(text, sizeof text, "mmap failed: %s", strerror(errno));
    return fail(env, "TC_ERR_IO", text);
  }
  mapping_t* m = malloc(sizeof(mapping_t));
  if (m == NULL) {
    munmap(map, span);
    return fail(env, "TC_ERR_INTERNAL", "mapFile: out of memory");
  }
  m->map = map;
  m->map_length = span;
  m->data = (uint8_t*)map + (position - start);
  m->length = (size_t)length;
  m->refs = 1;
  napi_value handle;
  if (napi_create_external(env, m, release_handle, NULL, &handle) != napi_ok) {
    munmap(map, span);
    free(m);
    return fail(env, "TC_ERR_INTERNAL", "mapFile: cannot create the handle");
  }
  return handle;
}

// lendMapped(handle, offset, length) -> ArrayBuffer over bytes [offset, offset + length) of the mapping.
napi_value LendMapped(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void* data = NULL;
  int64_t offset, length;
  if (argc != 3 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL || !get_index(env, argv[1], &offset) ||
      !get_index(env, argv[2], &length) || length < 1) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "lendMapped(handle, offset, length >= 1)");
    return NULL;
  }
  mapping_t* m = (mapping_t*)data;
  if ((uint64_t)offset + (uint64_t)length > m->length) {
    napi_throw_range_error(env, "TC_ERR_SOURCE_RANGE", "lendMapped: the range is outside the mapping");
    return NULL;
  }
  lent_t* l = malloc(sizeof(lent_t));
  if (l == NULL) return fail(env, "TC_ERR_INTERNAL", "lendMapped: out of memory");
  l->mapping = m;
  l->length = (size_t)length;
  m->refs++;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, m->data + offset, (size_t)length, release_lent, l, &ab) != napi_ok) {
    m->refs--;
    free(l);
    return fail(env, "TC_ERR_INTERNAL", "lendMapped: cannot lend the mapping to JavaScript");
  }
  // V8 counts the buffer as memory allocated outside its heap and collects garbage early to free such
  // memory; these are page-cache pages a collection cannot give back, so they are taken off that count.
  // Lent pieces are small, so the count never strays far before this.
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)length, &ignored);
  return ab;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref dst_ref, src_ref;
  uint8_t* dst;
  const uint8_t* src;
  size_t row_len, stride, rows;
} gather_job_t;

static void gather_execute(napi_env env, void* data) {
  (void)env;
  gather_job_t* j = (gather_job_t*)data;
  const uint8_t* s = j->src;
  uint8_t* d = j->dst;
  for (size_t r = 0; r < j->rows; r++, s += j->stride, d += j->row_len) memcpy(d, s, j->row_len);
}

static void gather_complete(napi_env env, napi_status status, void* data) {
  gather_job_t* j = (gather_job_t*)data;
  napi_value result;
  if (status == napi_ok) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value code, msg;
    napi_create_string_utf8(env, "TC_ERR_INTERNAL", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, "gatherAsync was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  }
  napi_delete_reference(env, j->dst_ref);
  napi_delete_reference(env, j->src_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static int get_bytes(napi_env env, napi_value v, uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  size_t count;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, &ab, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = (uint8_t*)ptr;
  *length = count;
  return 1;
}

// gatherAsync(dst, dstOffset, src, srcOffset, rowLength, stride, rows) -> Promise<void>: the strided gather
// of gather.c on the libuv pool (the source may be mapped file pages, which can fault in from disk).
napi_value GatherAsync(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *dst, *src;
  size_t dst_len, src_len;
  int64_t dst_off, src_off, row_len, stride, rows;
  if (argc != 7 || !get_bytes(env, argv[0], &dst, &dst_len) || !get_index(env, argv[1], &dst_off) ||
      !get_bytes(env, argv[2], &src, &src_len) || !get_index(env, argv[3], &src_off) || !get_index(env, argv[4], &row_len) ||
      !get_index(env, argv[5], &stride) || !get_index(env, argv[6], &rows)) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT",
                          "gatherAsync(dst: Uint8Array, dstOffset, src: Uint8Array, srcOffset, rowLength, stride, rows)");
    return NULL;
  }
  if (rows > 0 && row_len > 0) {
    __int128 src_end = (__int128)src_off + (__int128)(rows - 1) * stride + row_len;
    __int128 dst_end = (__int128)dst_off + (__int128)rows * row_len;
    if (stride < row_len || src_end > (__int128)src_len || dst_end > (__int128)dst_len) {
      napi_throw_range_error(env, "TC_ERR_SOURCE_RANGE", "gatherAsync: rows fall outside the source or destination");
      return NULL;
    }
  }
  gather_job_t* j = calloc(1, sizeof(gather_job_t));
  if (j == NULL) return fail(env, "TC_ERR_INTERNAL", "gatherAsync: out of memory");
  j->dst = dst + dst_off;
  j->src = src + src_off;
  j->row_len = (size_t)row_len;
  j->stride = (size_t)stride;
  j->rows = row_len > 0 ? (size_t)rows : 0;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &j->dst_ref);
  napi_create_reference(env, argv[2], 1, &j->src_ref);
  napi_create_string_utf8(env, "tensorcast.gatherAsync", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, gather_execute, gather_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}
