// tensorcast native kernel: strided gather straight from a file's pages. The span of rows is mapped
// read-only and only the rows are copied, so a column slice reads (and copies) just the bytes it needs
// instead of the whole span. Runs as async work on the libuv pool; the event loop never blocks.

#define _GNU_SOURCE
#include <node_api.h>
#include "napi_args.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref dst_ref;
  uint8_t* dst;
  int fd;
  int64_t position, row_len, stride, rows;
  int err;
  const char* what;
} job_t;

static void execute(napi_env env, void* data) {
  (void)env;
  job_t* j = (job_t*)data;
  struct stat st;
  if (fstat(j->fd, &st) != 0) {
    j->err = errno;
    j->what = "fstat";
    return;
  }
  int64_t span = (j->rows - 1) * j->stride + j->row_len;
  if (j->position + span > st.st_size) {
    j->err = -1;  // the file is shorter than the rows need: a short read
    j->what = "short";
    return;
  }
  long page = sysconf(_SC_PAGESIZE);
  int64_t start = j->position - (j->position % page);
  size_t len = (size_t)(j->position + span - start);
  uint8_t* map = mmap(NULL, len, PROT_READ, MAP_SHARED, j->fd, (off_t)start);
  if (map == MAP_FAILED) {
    j->err = errno;
    j->what = "mmap";
    return;
  }
  const uint8_t* s = map + (j->position - start);
  uint8_t* d = j->dst;
  for (int64_t r = 0; r < j->rows; r++, s += j->stride, d += j->row_len) memcpy(d, s, (size_t)j->row_len);
  munmap(map, len);
}

static void complete(napi_env env, napi_status status, void* data) {
  job_t* j = (job_t*)data;
  napi_value result;
  if (status == napi_ok && j->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    const char* c = j->err == -1 ? "TC_ERR_SHORT_READ" : "TC_ERR_IO";
    char text[128];
    if (j->err == -1) snprintf(text, sizeof text, "file ends before the rows it should hold");
    else snprintf(text, sizeof text, "%s failed: %s", j->what ? j->what : "gather", strerror(j->err));
    napi_reject_deferred(env, j->deferred, coded_error(env, c, text));
  }
  napi_delete_reference(env, j->dst_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

// gatherFile(fd, position, rowLength, stride, rows, dst, dstOffset) -> Promise<void>
napi_value GatherFile(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, position, row_len, stride, rows, dst_off;
  napi_typedarray_type type;
  size_t dst_len;
  void* dst;
  napi_value ab;
  size_t byte_off;
  if (argc != 7 || !get_fd(env, argv[0], &fd) || !get_index(env, argv[1], &position) || !get_index(env, argv[2], &row_len) ||
      !get_index(env, argv[3], &stride) || !get_index(env, argv[4], &rows) || !get_index(env, argv[6], &dst_off) ||
      napi_get_typedarray_info(env, argv[5], &type, &dst_len, &dst, &ab, &byte_off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "gatherFile(fd, position, rowLength, stride, rows, dst: Uint8Array, dstOffset)");
    return NULL;
  }
  if (rows < 1 || row_len < 1 || stride < row_len || (__int128)dst_off + (__int128)rows * row_len > (__int128)dst_len) {
    napi_throw_range_error(env, "TC_ERR_SOURCE_RANGE", "gatherFile: rows fall outside the destination");
    return NULL;
  }
  job_t* j = calloc(1, sizeof(job_t));
  j->fd = (int)fd;
  j->position = position;
  j->row_len = row_len;
  j->stride = stride;
  j->rows = rows;
  j->dst = (uint8_t*)dst + dst_off;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[5], 1, &j->dst_ref);
  napi_create_string_utf8(env, "tensorcast.gatherFile", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}
