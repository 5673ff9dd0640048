# Install rules and the CMake package, so that another project can
#   find_package(loom 0.1 REQUIRED)            # after: cmake --install build --prefix <prefix>
#   target_link_libraries(app PRIVATE loom::loom)   # the engine (autograd + kernels)
#   target_link_libraries(app PRIVATE loom::models) # + models, data sets, image grids, metrics
# Headers go to <prefix>/include/loom/{autograd,kernels,models}/ (so includes read "autograd/loom.h"
# as in-tree), the generated kernels/config.h with them, the static libraries to <prefix>/lib, and
# loomConfig.cmake, loomConfigVersion.cmake and loomTargets*.cmake to <prefix>/lib/cmake/loom/.
include(CMakePackageConfigHelpers)

# Builds that cannot be used from outside say so instead of installing something broken.
if(LOOM_CUDA_EMULATED OR LOOM_SANITIZE)
  set(why "-DLOOM_CUDA=EMULATE (CUDA kernels on a CPU emulator, for loom's own tests)")
  if(LOOM_SANITIZE)
    set(why "-DLOOM_SANITIZE=ON (objects need the sanitizer runtimes at link time)")
  endif()
  install(CODE "message(FATAL_ERROR \"loom: this build (${why}) is not installable; configure a build \
without it (-DLOOM_CUDA=AUTO, ON or OFF) to install loom\")")
  return()
endif()

set(LOOM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/loom)
set(LOOM_INSTALL_TARGETS loom loom_kernels)
if(TARGET loom_models)
  list(APPEND LOOM_INSTALL_TARGETS loom_models loom_stb)  # stb: models' image I/O, linked privately
endif()
install(TARGETS ${LOOM_INSTALL_TARGETS} EXPORT loomTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET loom_cli)
  install(TARGETS loom_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Public headers: everything but the CUDA kernels' own headers and the ops' private helpers.
install(DIRECTORY autograd kernels models DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom
        FILES_MATCHING PATTERN "*.h" PATTERN "*.def"
        PATTERN "kernels/cpu" EXCLUDE PATTERN "kernels/cuda" EXCLUDE PATTERN "autograd/ops" EXCLUDE
        PATTERN "autograd/nn" EXCLUDE PATTERN "autograd/optim" EXCLUDE)  # (sources only)
install(FILES ${PROJECT_BINARY_DIR}/include/kernels/config.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom/kernels)

install(EXPORT loomTargets NAMESPACE loom:: DESTINATION ${LOOM_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/loomConfig.cmake.in ${PROJECT_BINARY_DIR}/loomConfig.cmake
                              INSTALL_DESTINATION ${LOOM_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API, so only the same major.minor satisfies a request.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/loomConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/loomConfig.cmake ${PROJECT_BINARY_DIR}/loomConfigVersion.cmake
        DESTINATION ${LOOM_INSTALL_CMAKEDIR})
