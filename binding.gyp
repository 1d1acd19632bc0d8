{
  "targets": [
    {
      "target_name": "mesh_net",
      "sources": ["native/mesh_net.c", "native/sealed.c", "native/external.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ldl"]
    }
  ]
}
