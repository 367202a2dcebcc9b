{
  "targets": [
    {
      "target_name": "fleet_dnnl",
      "sources": ["dnnl-kernels.cc", "dnnl-batch-norm.cc", "dnnl-pooling.cc", "sgd.cc"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-O3", "-Wall", "-std=c++17", "-fexceptions"],
      "libraries": ["-ldnnl", "-lgomp"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] }
    }
  ]
}
