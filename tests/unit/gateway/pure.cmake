# Unit tests for the gateway's pure modules (see gateway/pure.cmake).
# include()d from tests/unit/gateway/CMakeLists.txt.
sluice_unit_test(test_eventstream SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_eventstream.c
                 LIBS sluice_gw PkgConfig::JANSSON)
sluice_unit_test(test_ratelimit SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ratelimit.c
                 LIBS sluice_gw)
sluice_unit_test(test_cbor SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cbor.c
                 LIBS sluice_gw PkgConfig::JANSSON PkgConfig::LIBCBOR m)
sluice_unit_test(test_putrecords SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_putrecords.c LIBS sluice_gw)
