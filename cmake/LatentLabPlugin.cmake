# latentlab_add_plugin(<name> SOURCES <src>... [LINK <target>...] [OUTPUT_DIRECTORY <dir>])
#
# Builds a LatentLab plugin library <name>.so: a MODULE library with hidden visibility linked
# against the SDK (LatentLab::core). Its sources must define the entry point with LATENTLAB_PLUGIN(...)
# from <latentlab/plugin.hpp>. Load it with `latentlab --plugin-path <dir>` or LATENTLAB_PLUGIN_PATH.
function(latentlab_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "latentlab_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  if(TARGET LatentLab::core)
    target_link_libraries(${name} PRIVATE LatentLab::core ${ARG_LINK})
  else()
    target_link_libraries(${name} PRIVATE latentlab_core ${ARG_LINK})
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
endfunction()
