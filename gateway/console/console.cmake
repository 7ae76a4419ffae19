# console.cmake - the web console (/dashboard/) embedded into sluice_gw.
# Included from gateway/CMakeLists.txt after add_library(sluice_gw ...).
#
# Every file the console serves is listed here as name:path (path relative to
# gateway/console/); embed.cmake turns them into console_assets.c at build
# time, and rebuilds it when any of them changes.
set(_console_dir ${CMAKE_CURRENT_SOURCE_DIR}/console)
set(_console_assets
  index.html:index.html
  app.js:app.js
  style.css:style.css
  uPlot.iife.min.js:vendor/uPlot.iife.min.js
  uPlot.min.css:vendor/uPlot.min.css
  uPlot-LICENSE.txt:vendor/LICENSE)
set(_console_files "")
foreach(_a IN LISTS _console_assets)
  string(REGEX REPLACE "^[^:]*:" "" _p "${_a}")
  list(APPEND _console_files ${_console_dir}/${_p})
endforeach()
# Commas, not semicolons: a list would be split into separate arguments.
string(REPLACE ";" "," _console_arg "${_console_assets}")
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/console_assets.c
  COMMAND ${CMAKE_COMMAND} -DSRC_DIR=${_console_dir}
          -DOUT=${CMAKE_CURRENT_BINARY_DIR}/console_assets.c
          -DASSETS=${_console_arg}
          -P ${_console_dir}/embed.cmake
  DEPENDS ${_console_dir}/embed.cmake ${_console_dir}/console.cmake ${_console_files}
  COMMENT "Embedding the web console (gateway/console)"
  VERBATIM)
target_sources(sluice_gw PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/console_assets.c)
target_include_directories(sluice_gw PRIVATE ${_console_dir})
