// tensorcast native kernel: the client's read of a shared-memory lease. Reads whole checksum chunks of the
// lease file into the destination and checks each against the CRC32C the daemon computed, block by block
// while the block is still in cache, on the libuv pool (the caller's thread stays free and several reads run
// on several cores). Finds the first chunk that differs; the caller then refuses the bytes. Chunks come
// from positional reads, or are copied out of a mapping of the file that the client keeps across loads
// (its page tables stay filled: a load again is a memcpy).

#define _GNU_SOURCE
#include <node_api.h>
#include "napi_args.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "crc32c.h"
#include "sigbus_guard.h"

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
    char text[128];
    const char* c = j->err == -1 ? "TC_ERR_SHORT_READ" : "TC_ERR_IO";
    if (status != napi_ok) snprintf(text, sizeof text, "readChunks was cancelled");
    else if (j->err == -1) snprintf(text, sizeof text, "the file ends before the chunks it should hold (truncated?)");
    else snprintf(text, sizeof text, "pread failed: %s", strerror(j->err));
    napi_reject_deferred(env, j->deferred, coded_error(env, c, text));
  }
  napi_delete_reference(env, j->dst_ref);
  napi_delete_reference(env, j->crc_ref);
  napi_delete_async_work(env, j->work);
  free(j);
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
  if (argc != 5 || !get_fd(env, argv[0], &fd) || !get_index(env, argv[1], &position) || !get_index(env, argv[3], &chunk) ||
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

/* ---- a mapping of a lease file, kept by the client ------------------------------------------------- */

/* A read-only mapping. Only the main thread changes these fields; `busy` copies hold it mapped. */
typedef struct {
  const uint8_t* addr;
  size_t length;
  int busy;
  int unmap_wanted;
} view_t;

static void view_unmap(view_t* v) {
  if (v->addr != NULL) munmap((void*)v->addr, v->length);
  v->addr = NULL;
}

static void finalize_view(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  view_t* v = (view_t*)data;
  view_unmap(v);  // no copy can be running: each holds a reference to the handle
  free(v);
}

// mapRead(fd, length) -> handle: maps [0, length) of a file shared and read-only. The handle is opaque (no
// JavaScript view of the pages: nothing can touch them but copyChunks).
static napi_value MapRead(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, length;
  if (argc != 2 || !get_fd(env, argv[0], &fd) || !get_index(env, argv[1], &length) || length < 1) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "mapRead(fd, length >= 1)");
    return NULL;
  }
  void* addr = mmap(NULL, (size_t)length, PROT_READ, MAP_SHARED, (int)fd, 0);
  if (addr == MAP_FAILED) {
    char msg[128];
    snprintf(msg, sizeof msg, "mmap of a shm lease file failed: %s", strerror(errno));
    napi_throw_error(env, "TC_ERR_IO", msg);
    return NULL;
  }
  view_t* v = calloc(1, sizeof(view_t));
  napi_value handle;
  if (v == NULL || napi_create_external(env, v, finalize_view, NULL, &handle) != napi_ok) {
    munmap(addr, (size_t)length);
    free(v);
    napi_throw_error(env, "TC_ERR_INTERNAL", "mapRead: out of memory");
    return NULL;
  }
  v->addr = (const uint8_t*)addr;
  v->length = (size_t)length;
  tc_sigbus_guard_install();
  return handle;
}

static view_t* get_view(napi_env env, napi_value v) {
  napi_valuetype t;
  void* data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return (view_t*)data;
}

// unmapRead(handle): unmaps now, or once the copies under way are done.
static napi_value UnmapRead(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  view_t* v = argc == 1 ? get_view(env, argv[0]) : NULL;
  if (v == NULL) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "unmapRead(handle from mapRead)");
    return NULL;
  }
  if (v->busy > 0) v->unmap_wanted = 1;
  else view_unmap(v);
  return NULL;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref view_ref, dst_ref, crc_ref;
  view_t* view;
  const uint8_t* src;
  uint8_t* dst;
  size_t length, chunk;
  const uint32_t* expected;
  int64_t bad;
  int short_read;
} copy_job_t;

static void copy_execute(napi_env env, void* data) {
  (void)env;
  copy_job_t* j = (copy_job_t*)data;
  volatile int64_t bad = -1;
  volatile int faulted = 0;
  // A file truncated under the mapping ends the copy (SIGBUS caught): reported as a short read.
  TC_SIGBUS_GUARDED(faulted, {
    for (size_t at = 0, i = 0; at < j->length; at += j->chunk, i++) {
      size_t n = j->length - at < j->chunk ? j->length - at : j->chunk;
      uint32_t crc = 0;
      for (size_t b = 0; b < n; b += BLOCK_BYTES) {
        size_t m = n - b < BLOCK_BYTES ? n - b : BLOCK_BYTES;
        memcpy(j->dst + at + b, j->src + at + b, m);
        crc = tc_crc32c(crc, j->dst + at + b, m);
      }
      if (crc != j->expected[i]) {
        bad = (int64_t)i;
        break;
      }
    }
  });
  j->bad = bad;
  j->short_read = faulted;
}

static void copy_complete(napi_env env, napi_status status, void* data) {
  copy_job_t* j = (copy_job_t*)data;
  napi_value result;
  if (status == napi_ok && !j->short_read) {
    napi_create_int64(env, j->bad, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_reject_deferred(env, j->deferred,
                         coded_error(env, status == napi_ok ? "TC_ERR_SHORT_READ" : "TC_ERR_IO",
                                     status == napi_ok ? "the file ends before the chunks it should hold (truncated?)" : "copyChunks was cancelled"));
  }
  if (--j->view->busy == 0 && j->view->unmap_wanted) view_unmap(j->view);
  napi_delete_reference(env, j->view_ref);
  napi_delete_reference(env, j->dst_ref);
  napi_delete_reference(env, j->crc_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

// copyChunks(handle, position, dst: Uint8Array, chunkBytes, expected: Uint32Array) -> Promise<number>: as
// readChunks, from the mapping. Rejects TC_ERR_SHORT_READ when the range is past the mapping or the file
// shrank under it.
static napi_value CopyChunks(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  view_t* v = argc == 5 ? get_view(env, argv[0]) : NULL;
  int64_t position, chunk;
  napi_typedarray_type t1, t2;
  size_t dst_len, crc_len, off;
  void *dst, *crcs;
  napi_value ab;
  if (v == NULL || !get_index(env, argv[1], &position) || !get_index(env, argv[3], &chunk) || chunk < 1 ||
      napi_get_typedarray_info(env, argv[2], &t1, &dst_len, &dst, &ab, &off) != napi_ok || t1 != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[4], &t2, &crc_len, &crcs, &ab, &off) != napi_ok || t2 != napi_uint32_array) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "copyChunks(handle, position, dst: Uint8Array, chunkBytes >= 1, expected: Uint32Array)");
    return NULL;
  }
  if (crc_len != (dst_len + (size_t)chunk - 1) / (size_t)chunk) {
    napi_throw_range_error(env, "TC_ERR_INVALID_ARGUMENT", "copyChunks: expected must hold one CRC per chunk of dst");
    return NULL;
  }
  if (v->addr == NULL || v->unmap_wanted || (uint64_t)position + dst_len > v->length) {
    napi_throw_range_error(env, "TC_ERR_SHORT_READ", "copyChunks: the range is outside the mapping (or it was unmapped)");
    return NULL;
  }
  copy_job_t* j = calloc(1, sizeof(copy_job_t));
  if (j == NULL) {
    napi_throw_error(env, "TC_ERR_INTERNAL", "copyChunks: out of memory");
    return NULL;
  }
  j->view = v;
  j->src = v->addr + position;
  j->dst = (uint8_t*)dst;
  j->length = dst_len;
  j->chunk = (size_t)chunk;
  j->expected = (const uint32_t*)crcs;
  v->busy++;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &j->view_ref);
  napi_create_reference(env, argv[2], 1, &j->dst_ref);
  napi_create_reference(env, argv[4], 1, &j->crc_ref);
  napi_create_string_utf8(env, "tensorcast.copyChunks", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, copy_execute, copy_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

void tc_register_shm_read(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "readChunks", NAPI_AUTO_LENGTH, ReadChunks, NULL, &fn);
  napi_set_named_property(env, exports, "readChunks", fn);
  napi_create_function(env, "mapRead", NAPI_AUTO_LENGTH, MapRead, NULL, &fn);
  napi_set_named_property(env, exports, "mapRead", fn);
  napi_create_function(env, "unmapRead", NAPI_AUTO_LENGTH, UnmapRead, NULL, &fn);
  napi_set_named_property(env, exports, "unmapRead", fn);
  napi_create_function(env, "copyChunks", NAPI_AUTO_LENGTH, CopyChunks, NULL, &fn);
  napi_set_named_property(env, exports, "copyChunks", fn);
}
