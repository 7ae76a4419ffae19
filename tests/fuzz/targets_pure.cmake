# Fuzz targets for the gateway's pure codec modules (see gateway/pure.cmake).
# include()d from tests/fuzz/CMakeLists.txt; corpora in corpus/<name>/.
sluice_fuzz_target(fuzz_eventstream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_eventstream.c
                   LIBS sluice_gw)
sluice_fuzz_target(fuzz_cbor SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_cbor.c LIBS sluice_gw)
sluice_fuzz_target(fuzz_putrecords SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_putrecords.c LIBS sluice_gw)
