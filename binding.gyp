{
  "targets": [
    {
      "target_name": "tensorcast_native",
      "sources": ["native/gather.c", "native/file_gather.c", "native/crc32c.c", "native/crc32c_napi.c", "native/shm_segment.c", "native/shm_read.c", "native/sigbus_guard.c"],
      "cflags": ["-O3", "-std=c11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
