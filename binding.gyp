{
  "targets": [
    {
      "target_name": "tensorcast_native",
      "sources": ["native/gather.c", "native/file_gather.c", "native/crc32c.c", "native/crc32c_napi.c"],
      "cflags": ["-O3", "-std=c11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
