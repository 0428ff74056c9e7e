// tensorcast native kernel: shared-memory segments on tmpfs. A daemon keeps each segment file mapped for
// its lifetime (writes then land in pages already in its page tables instead of faulting one by one),
// allocates a segment's pages ahead of need on a low-priority thread and fills its page tables on the pool,
// and computes (or copies and computes) CRC32C per chunk on the libuv pool.

#define _GNU_SOURCE
#include <node_api.h>
#include "napi_args.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crc32c.h"
#include "sigbus_guard.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Copy and checksum in blocks that stay in L2, so the checksum reads the bytes the copy just wrote. */
#define BLOCK_BYTES (256u << 10)

static void throw_code(napi_env env, const char* code, const char* msg) { napi_throw_error(env, code, msg); }

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* count) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, count, data, &ab, &offset) != napi_ok) return 0;
  return type == want;
}

/* ---- mappings ------------------------------------------------------------------------------------- */

/* One mapping handed to JavaScript as an external ArrayBuffer. `mapped` turns 0 at unmap; the struct is
   freed by the ArrayBuffer's finalizer, so a finalizer that runs late never unmaps a newer mapping that
   happens to reuse the address. Only the main thread touches these. */
typedef struct mapping {
  void* addr;
  size_t length;
  int mapped;
  struct mapping* next;
} mapping_t;

static mapping_t* live = NULL;

static void forget(mapping_t* m) {
  for (mapping_t** p = &live; *p != NULL; p = &(*p)->next) {
    if (*p == m) {
      *p = m->next;
      return;
    }
  }
}

static void finalize_mapping(napi_env env, void* data, void* hint) {
  (void)env;
  (void)data;
  mapping_t* m = (mapping_t*)hint;
  if (m->mapped) {
    munmap(m->addr, m->length);
    forget(m);
  }
  free(m);
}

/* An external ArrayBuffer over a mapping; 0 on failure. */
static int wrap_mapping(napi_env env, mapping_t* m, napi_value* ab) {
  return napi_create_external_arraybuffer(env, m->addr, m->length, finalize_mapping, m, ab) == napi_ok;
}

// mapFile(fd, offset, length, populate) -> ArrayBuffer over [offset, offset + length) of the file, shared
// and writable; populate fills the page tables now (pages already allocated are mapped without faults).
static napi_value MapFile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, offset, length;
  bool populate = false;
  if (argc != 4 || !get_fd(env, argv[0], &fd) || !get_index(env, argv[1], &offset) || !get_index(env, argv[2], &length) ||
      napi_get_value_bool(env, argv[3], &populate) != napi_ok || length < 1 || offset % sysconf(_SC_PAGESIZE) != 0) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "mapFile(fd, offset: page-aligned, length >= 1, populate: boolean)");
    return NULL;
  }
  void* addr = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), (int)fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    char msg[128];
    snprintf(msg, sizeof msg, "mmap of a shm segment failed: %s", strerror(errno));
    throw_code(env, errno == ENOMEM ? "TC_ERR_NO_SPACE" : "TC_ERR_IO", msg);
    return NULL;
  }
  mapping_t* m = calloc(1, sizeof(mapping_t));
  napi_value ab;
  if (m == NULL) {
    munmap(addr, (size_t)length);
    throw_code(env, "TC_ERR_INTERNAL", "mapFile: out of memory");
    return NULL;
  }
  m->addr = addr;
  m->length = (size_t)length;
  m->mapped = 1;
  if (!wrap_mapping(env, m, &ab)) {
    munmap(addr, (size_t)length);
    free(m);
    throw_code(env, "TC_ERR_INTERNAL", "mapFile: cannot wrap the mapping in an ArrayBuffer");
    return NULL;
  }
  m->next = live;
  live = m;
  tc_sigbus_guard_install();
  return ab;
}

// unmap(arrayBuffer): unmaps a mapping made by mapFile and detaches the ArrayBuffer, so every view of it
// reads as empty instead of touching unmapped memory. A second call is a no-op; any other buffer throws.
static napi_value Unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ab = false;
  if (argc != 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "unmap(buffer: ArrayBuffer from mapFile)");
    return NULL;
  }
  void* data;
  size_t length;
  napi_get_arraybuffer_info(env, argv[0], &data, &length);
  if (data == NULL || length == 0) return NULL;  // already detached
  mapping_t* m = live;
  while (m != NULL && m->addr != data) m = m->next;
  if (m == NULL || m->length != length) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "unmap: not a mapping made by mapFile");
    return NULL;
  }
  m->mapped = 0;
  forget(m);
  munmap(m->addr, m->length);
  // Last: detaching may run the finalizer, which frees m.
  napi_detach_arraybuffer(env, argv[0]);
  return NULL;
}

// remap(arrayBuffer, length) -> ArrayBuffer: resizes a mapping made by mapFile (mremap: the pages already
// mapped keep their page-table entries, wherever the mapping moves). The old ArrayBuffer is detached.
static napi_value Remap(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ab = false;
  int64_t length;
  if (argc != 2 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab || !get_index(env, argv[1], &length) || length < 1) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "remap(buffer: ArrayBuffer from mapFile, length >= 1)");
    return NULL;
  }
  void* data;
  size_t old_len;
  napi_get_arraybuffer_info(env, argv[0], &data, &old_len);
  mapping_t* m = live;
  while (m != NULL && (data == NULL || m->addr != data)) m = m->next;
  if (m == NULL || m->length != old_len) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "remap: not a live mapping made by mapFile");
    return NULL;
  }
  mapping_t* n = calloc(1, sizeof(mapping_t));
  if (n == NULL) {
    throw_code(env, "TC_ERR_INTERNAL", "remap: out of memory");
    return NULL;
  }
  void* addr = mremap(m->addr, m->length, (size_t)length, MREMAP_MAYMOVE);
  if (addr == MAP_FAILED) {
    char msg[128];
    snprintf(msg, sizeof msg, "mremap of a shm segment failed: %s", strerror(errno));
    free(n);
    throw_code(env, errno == ENOMEM ? "TC_ERR_NO_SPACE" : "TC_ERR_IO", msg);
    return NULL;
  }
  // The old range is gone (moved or resized): its ArrayBuffer must neither be read nor unmapped again.
  m->mapped = 0;
  forget(m);
  n->addr = addr;
  n->length = (size_t)length;
  n->mapped = 1;
  napi_value ab;
  if (!wrap_mapping(env, n, &ab)) {
    munmap(addr, (size_t)length);
    free(n);
    napi_detach_arraybuffer(env, argv[0]);
    throw_code(env, "TC_ERR_INTERNAL", "remap: cannot wrap the mapping in an ArrayBuffer");
    return NULL;
  }
  n->next = live;
  live = n;
  napi_detach_arraybuffer(env, argv[0]);
  return ab;
}

/* ---- prefault: pages allocated on a background thread, page tables filled on the pool --------------- */

/* Zeros written at a time by the allocating thread. */
#define ZERO_BYTES (1u << 20)

typedef struct {
  napi_deferred deferred;
  napi_threadsafe_function done;
  int fd;
  int64_t offset, length;
  int low_priority;
  int err;
} alloc_t;

static void alloc_done(napi_env env, napi_value js_cb, void* context, void* data) {
  (void)js_cb;
  (void)context;
  alloc_t* j = (alloc_t*)data;
  if (env != NULL) {
    napi_value result;
    if (j->err == 0) {
      napi_get_undefined(env, &result);
      napi_resolve_deferred(env, j->deferred, result);
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "allocating shm pages failed: %s", strerror(j->err));
      napi_reject_deferred(env, j->deferred, coded_error(env, j->err == ENOSPC || j->err == ENOMEM ? "TC_ERR_NO_SPACE" : "TC_ERR_IO", msg));
    }
    napi_release_threadsafe_function(j->done, napi_tsfn_release);
  }
  free(j);
}

static void* alloc_thread(void* arg) {
  alloc_t* j = (alloc_t*)arg;
  // This thread only fills a reserve for later builds: it yields the cores to loads under way. (A thread of
  // its own: an unprivileged thread cannot raise its priority back, so the libuv pool is left alone.) It
  // touches no mapping, so it never holds the process's mmap lock while it waits for a core.
  if (j->low_priority) setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
  static const uint8_t zeros[ZERO_BYTES];
  // Whole pages written through the file are allocated without being cleared first (a fault would clear
  // them, then the build would write them again): one pass instead of two.
  for (int64_t at = 0; at < j->length;) {
    size_t n = j->length - at < (int64_t)ZERO_BYTES ? (size_t)(j->length - at) : ZERO_BYTES;
    ssize_t w = pwrite(j->fd, zeros, n, (off_t)(j->offset + at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      j->err = w < 0 ? errno : EIO;
      break;
    }
    at += w;
  }
  napi_call_threadsafe_function(j->done, j, napi_tsfn_blocking);
  return NULL;
}

// allocate(fd, offset, length, lowPriority) -> Promise<void>: allocates the file's pages in
// [offset, offset + length) by writing zeros, on a thread of its own.
static napi_value Allocate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, offset, length;
  bool low = false;
  if (argc != 4 || !get_fd(env, argv[0], &fd) || !get_index(env, argv[1], &offset) || !get_index(env, argv[2], &length) ||
      napi_get_value_bool(env, argv[3], &low) != napi_ok || length < 1) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "allocate(fd, offset, length >= 1, lowPriority: boolean)");
    return NULL;
  }
  alloc_t* j = calloc(1, sizeof(alloc_t));
  if (j == NULL) {
    throw_code(env, "TC_ERR_INTERNAL", "allocate: out of memory");
    return NULL;
  }
  j->fd = (int)fd;
  j->offset = offset;
  j->length = length;
  j->low_priority = low;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "tensorcast.allocate", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, alloc_done, &j->done);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&t, &attr, alloc_thread, j);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    // No thread: do it on this one (rare; allocating ahead is an optimization, never a correctness need).
    j->low_priority = 0;
    alloc_thread(j);
  }
  return promise;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref map_ref;
  uint8_t* addr;
  size_t length;
  int err;
} populate_t;

static void populate_execute(napi_env env, void* data) {
  (void)env;
  populate_t* j = (populate_t*)data;
  // EINVAL: a kernel before 5.14; the pages are allocated and the first write maps them.
  if (madvise(j->addr, j->length, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) j->err = errno;
}

static void populate_complete(napi_env env, napi_status status, void* data) {
  populate_t* j = (populate_t*)data;
  napi_value result;
  if (status == napi_ok && j->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "mapping shm pages failed: %s", status == napi_ok ? strerror(j->err) : "cancelled");
    napi_reject_deferred(env, j->deferred, coded_error(env, j->err == ENOMEM ? "TC_ERR_NO_SPACE" : "TC_ERR_IO", msg));
  }
  napi_delete_reference(env, j->map_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

// populate(mapping: ArrayBuffer, offset, length) -> Promise<void>: fills the page tables of
// [offset, offset + length) of a mapping made by mapFile, on the libuv pool (pages the file already holds
// are mapped without faults later). Short ranges keep the process's mmap lock held only briefly.
static napi_value Populate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ab = false;
  int64_t offset, length;
  if (argc != 3 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab || !get_index(env, argv[1], &offset) ||
      !get_index(env, argv[2], &length) || length < 1 || offset % sysconf(_SC_PAGESIZE) != 0) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "populate(mapping: ArrayBuffer, offset: page-aligned, length >= 1)");
    return NULL;
  }
  void* data;
  size_t ab_len;
  napi_get_arraybuffer_info(env, argv[0], &data, &ab_len);
  mapping_t* m = live;
  while (m != NULL && (data == NULL || m->addr != data)) m = m->next;
  if (m == NULL || (size_t)(offset + length) > ab_len) {
    napi_throw_range_error(env, "TC_ERR_INVALID_ARGUMENT", "populate: not a live mapping from mapFile, or a range outside it");
    return NULL;
  }
  populate_t* j = calloc(1, sizeof(populate_t));
  if (j == NULL) {
    throw_code(env, "TC_ERR_INTERNAL", "populate: out of memory");
    return NULL;
  }
  j->addr = (uint8_t*)data + offset;
  j->length = (size_t)length;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &j->map_ref);
  napi_create_string_utf8(env, "tensorcast.populate", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, populate_execute, populate_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

/* ---- CRC32C per chunk (and copy) on the libuv pool ------------------------------------------------ */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref src_ref, out_ref, dst_ref;
  const uint8_t* src;
  uint8_t* dst;
  size_t length, chunk;
  uint32_t* out;
  int faulted;
} crc_job_t;

static void crc_execute(napi_env env, void* data) {
  (void)env;
  crc_job_t* j = (crc_job_t*)data;
  volatile int faulted = 0;
  // A segment file truncated under its mapping (by someone else) ends the job instead of the process.
  TC_SIGBUS_GUARDED(faulted, {
    for (size_t at = 0, i = 0; at < j->length; at += j->chunk, i++) {
      size_t n = j->length - at < j->chunk ? j->length - at : j->chunk;
      uint32_t crc = 0;
      if (j->dst == NULL) {
        crc = tc_crc32c(0, j->src + at, n);
      } else {
        for (size_t b = 0; b < n; b += BLOCK_BYTES) {
          size_t m = n - b < BLOCK_BYTES ? n - b : BLOCK_BYTES;
          memcpy(j->dst + at + b, j->src + at + b, m);
          crc = tc_crc32c(crc, j->dst + at + b, m);
        }
      }
      j->out[i] = crc;
    }
  });
  j->faulted = faulted;
}

static void crc_complete(napi_env env, napi_status status, void* data) {
  crc_job_t* j = (crc_job_t*)data;
  napi_value result;
  if (status == napi_ok && !j->faulted) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else if (status == napi_ok) {
    napi_reject_deferred(env, j->deferred, coded_error(env, "TC_ERR_SHORT_READ", "crcChunks: a mapped file shrank under the copy"));
  } else {
    napi_reject_deferred(env, j->deferred, coded_error(env, "TC_ERR_ABORTED", "crcChunks was cancelled"));
  }
  napi_delete_reference(env, j->src_ref);
  napi_delete_reference(env, j->out_ref);
  if (j->dst_ref != NULL) napi_delete_reference(env, j->dst_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

// crcChunks(src: Uint8Array, chunkBytes, out: Uint32Array, dst?: Uint8Array) -> Promise<void>: out[i] =
// CRC32C of chunk i of src (the last may be shorter); with dst (as long as src), src is copied into it too.
static napi_value CrcChunks(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *src, *out, *dst = NULL;
  size_t src_len, out_len, dst_len = 0;
  int64_t chunk;
  napi_valuetype dt = napi_undefined;
  if (argc >= 4) napi_typeof(env, argv[3], &dt);
  if (argc < 3 || !get_typed(env, argv[0], napi_uint8_array, &src, &src_len) || !get_index(env, argv[1], &chunk) || chunk < 1 ||
      !get_typed(env, argv[2], napi_uint32_array, &out, &out_len) ||
      (dt != napi_undefined && !get_typed(env, argv[3], napi_uint8_array, &dst, &dst_len))) {
    napi_throw_type_error(env, "TC_ERR_INVALID_ARGUMENT", "crcChunks(src: Uint8Array, chunkBytes >= 1, out: Uint32Array, dst?: Uint8Array)");
    return NULL;
  }
  if (out_len != (src_len + (size_t)chunk - 1) / (size_t)chunk || (dst != NULL && dst_len != src_len)) {
    napi_throw_range_error(env, "TC_ERR_INVALID_ARGUMENT", "crcChunks: out must hold one CRC per chunk, dst as many bytes as src");
    return NULL;
  }
  crc_job_t* j = calloc(1, sizeof(crc_job_t));
  if (j == NULL) {
    throw_code(env, "TC_ERR_INTERNAL", "crcChunks: out of memory");
    return NULL;
  }
  j->src = (const uint8_t*)src;
  j->dst = (uint8_t*)dst;
  j->length = src_len;
  j->chunk = (size_t)chunk;
  j->out = (uint32_t*)out;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &j->src_ref);
  napi_create_reference(env, argv[2], 1, &j->out_ref);
  if (dst != NULL) napi_create_reference(env, argv[3], 1, &j->dst_ref);
  napi_create_string_utf8(env, "tensorcast.crcChunks", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, crc_execute, crc_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

void tc_register_shm_read(napi_env env, napi_value exports);

void tc_register_shm(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mapFile", NAPI_AUTO_LENGTH, MapFile, NULL, &fn);
  napi_set_named_property(env, exports, "mapFile", fn);
  napi_create_function(env, "unmap", NAPI_AUTO_LENGTH, Unmap, NULL, &fn);
  napi_set_named_property(env, exports, "unmap", fn);
  napi_create_function(env, "remap", NAPI_AUTO_LENGTH, Remap, NULL, &fn);
  napi_set_named_property(env, exports, "remap", fn);
  napi_create_function(env, "allocate", NAPI_AUTO_LENGTH, Allocate, NULL, &fn);
  napi_set_named_property(env, exports, "allocate", fn);
  napi_create_function(env, "populate", NAPI_AUTO_LENGTH, Populate, NULL, &fn);
  napi_set_named_property(env, exports, "populate", fn);
  napi_create_function(env, "crcChunks", NAPI_AUTO_LENGTH, CrcChunks, NULL, &fn);
  napi_set_named_property(env, exports, "crcChunks", fn);
  tc_register_shm_read(env, exports);
}
