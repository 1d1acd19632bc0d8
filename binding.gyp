{
  "targets": [
    {
      "target_name": "mesh_net",
      "sources": ["native/mesh_net.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
