{
  "targets": [
    {
      "target_name": "fleet_jpeg",
      "sources": ["jpeg-decode.c"],
      "cflags": ["-O2", "-Wall"],
      "include_dirs": ["<!@(pkg-config --cflags-only-I libjpeg 2>/dev/null | sed 's/-I//g')"],
      "libraries": ["<!@(pkg-config --libs libjpeg 2>/dev/null || echo -ljpeg)"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2"] }
    }
  ]
}
