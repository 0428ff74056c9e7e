// tensorcast native kernel: the client's read of a shared-memory lease. Reads whole checksum chunks of the
// lease file into the destination and checks each against the CRC32C the daemon computed, block by block
// while the block is still in cache, on the libuv pool (the caller's thread stays free and several reads run
// on several cores). Finds the first chunk that differs; the caller then refuses the bytes.

#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"

/* One pread, then its checksum while the bytes sit in L2. */
#define BLOCK_BYTES (256u << 10)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref dst_ref, crc_ref;
  int fd;
  int64_t position;
  uint8_t* dst;
  size_t length, chunk;
  const uint32_t* expected;
  int64_t bad;  // first chunk that failed, -1 when none
  int err;      // errno, or -1 for a short read
} read_job_t;

static void read_execute(napi_env env, void* data) {
  (void)env;
  read_job_t* j = (read_job_t*)data;
  j->bad = -1;
  for (size_t at = 0, i = 0; at < j->length; at += j->chunk, i++) {
    size_t n = j->length - at < j->chunk ? j->length - at : j->chunk;
    uint32_t crc = 0;
    for (size_t b = 0; b < n;) {
      size_t want = n - b < BLOCK_BYTES ? n - b : BLOCK_BYTES;
      ssize_t got = pread(j->fd, j->dst + at + b, want, (off_t)(j->position + (int64_t)(at + b)));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        j->err = got < 0 ? errno : -1;
        return;
      }
      crc = tc_crc32c(crc, j->dst + at + b, (size_t)got);
      b += (size_t)got;
    }
    if (crc != j->expected[i]) {
      j->bad = (int64_t)i;
      return;
    }
  }
}

static void read_complete(napi_env env, napi_status status, void* data) {
  read_job_t* j = (read_job_t*)data;
  napi_value result;
  if (status == napi_ok && j->err == 0) {
    napi_create_int64(env, j->bad, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value code, msg;
    char text[128];
    const char* c = j->err == -1 ? "TC_ERR_SHORT_READ" : "TC_ERR_IO";
    if (status != napi_ok) snprintf(text, sizeof text, "readChunks was cancelled");
    else if (j->err == -1) snprintf(text, sizeof text, "the file ends before the chunks it should hold (truncated?)");
    else snprintf(text, sizeof text, "pread failed: %s", strerror(j->err));
    napi_create_string_utf8(env, c, NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  }
  napi_delete_reference(env, j->dst_ref);
  napi_delete_reference(env, j->crc_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static int get_index(napi_env env, napi_value v, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

// readChunks(fd, position, dst: Uint8Array, chunkBytes, expected: Uint32Array) -> Promise<number>: reads
// dst.length bytes from position, chunk by chunk, and resolves with the index (within dst) of the first
// chunk whose CRC32C differs from expected[i], or -1. Rejects TC_ERR_SHORT_READ at end of file.
static napi_value ReadChunks(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, position, chunk;
  napi_typedarray_type t1, t2;
  size_t dst_len, crc_len, off;
  void *dst, *crcs;
  napi_value ab;
  if (argc != 5 || !get_index(env, argv[0], &fd) || !get_index(env, argv[1], &position) || !get_index(env, argv[3], &chunk) ||
      chunk < 1 || napi_get_typedarray_info(env, argv[2], &t1, &dst_len, &dst, &ab, &off) != napi_ok || t1 != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[4], &t2, &crc_len, &crcs, &ab, &off) != napi_ok || t2 != napi_uint32_array) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "readChunks(fd, position, dst: Uint8Array, chunkBytes >= 1, expected: Uint32Array)");
    return NULL;
  }
  if (crc_len != (dst_len + (size_t)chunk - 1) / (size_t)chunk) {
    napi_throw_range_error(env, "TC_ERR_INVALID_ARGUMENT", "readChunks: expected must hold one CRC per chunk of dst");
    return NULL;
  }
  read_job_t* j = calloc(1, sizeof(read_job_t));
  if (j == NULL) {
    napi_throw_error(env, "TC_ERR_INTERNAL", "readChunks: out of memory");
    return NULL;
  }
  j->fd = (int)fd;
  j->position = position;
  j->dst = (uint8_t*)dst;
  j->length = dst_len;
  j->chunk = (size_t)chunk;
  j->expected = (const uint32_t*)crcs;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[2], 1, &j->dst_ref);
  napi_create_reference(env, argv[4], 1, &j->crc_ref);
  napi_create_string_utf8(env, "tensorcast.readChunks", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, read_execute, read_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

void tc_register_shm_read(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "readChunks", NAPI_AUTO_LENGTH, ReadChunks, NULL, &fn);
  napi_set_named_property(env, exports, "readChunks", fn);
}
