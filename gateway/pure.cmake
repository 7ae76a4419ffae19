# Pure codec modules of the gateway (no sockets, files, clocks or libevent):
#   eventstream.c  application/vnd.amazon.eventstream framing (zlib CRC32)
#   ratelimit.c    token buckets with injected time
#   cbor.c         application/x-amz-cbor-1.1 <-> jansson (libcbor)
# include()d from gateway/CMakeLists.txt, which compiles GW_PURE_SOURCES into
# sluice_gw and links it with GW_PURE_LIBS. The imported targets are GLOBAL so
# that tests (another directory) can name them too.
find_package(ZLIB REQUIRED)
if(NOT TARGET ZLIB::ZLIB)
  message(FATAL_ERROR "zlib found but ZLIB::ZLIB missing")
endif()
get_target_property(_gw_zlib_global ZLIB::ZLIB IMPORTED_GLOBAL)
if(NOT _gw_zlib_global)
  set_target_properties(ZLIB::ZLIB PROPERTIES IMPORTED_GLOBAL TRUE)
endif()
pkg_check_modules(LIBCBOR REQUIRED IMPORTED_TARGET GLOBAL libcbor>=0.8)

set(GW_PURE_SOURCES eventstream.c ratelimit.c cbor.c)
# jansson is part of cbor.h's interface; libm for llround().
set(GW_PURE_LIBS PkgConfig::LIBCBOR ZLIB::ZLIB PkgConfig::JANSSON m)
