# Builds and runs tests/consumer (a project outside loom's tree) against loom, CPU backend only:
#   cmake -DMODE=package|subdirectory -DLOOM_SOURCE_DIR=... -DWORK_DIR=... [-DGENERATOR=Ninja]
#         [-DCXX_COMPILER=...] [-DC_COMPILER=...] [-DJOBS=2] -P run.cmake
# package:      configure loom alone (-DLOOM_CUDA=OFF, no tests/benchmarks/tools), build it,
#               `cmake --install` it into WORK_DIR/prefix, then find_package(loom) from the consumer.
# subdirectory: the consumer add_subdirectory()s loom's source tree, with loom's defaults for a
#               subproject (no LOOM_* options given: they must already mean CPU only, no tests).
# Either way loom is compiled from scratch once (at -O0, CMAKE_BUILD_TYPE=None, to stay fast): this is
# the slow part, about a minute on 2 cores. Then the consumer program runs and must print "ok".
cmake_minimum_required(VERSION 3.25)
foreach(v MODE LOOM_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED GENERATOR)
  set(GENERATOR Ninja)
endif()
if(NOT DEFINED JOBS)
  set(JOBS 2)
endif()
set(compilers "")
if(CXX_COMPILER)
  list(APPEND compilers -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(C_COMPILER)
  list(APPEND compilers -DCMAKE_C_COMPILER=${C_COMPILER})
endif()
set(common -G ${GENERATOR} ${compilers} -DCMAKE_BUILD_TYPE=None)
set(consumer_src ${CMAKE_CURRENT_LIST_DIR})

function(step name)
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  string(TIMESTAMP t1 "%s")
  math(EXPR dt "${t1} - ${t0}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${name} failed (${rc}) after ${dt} s:\n${out}")
  endif()
  message(STATUS "consumer (${MODE}): ${name} ok (${dt} s)")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

if(MODE STREQUAL "package")
  step("configure loom" ${CMAKE_COMMAND} -S ${LOOM_SOURCE_DIR} -B ${WORK_DIR}/loom-build ${common} -DLOOM_CUDA=OFF
       -DLOOM_BUILD_TESTS=OFF -DLOOM_BUILD_BENCH=OFF -DLOOM_BUILD_TOOLS=OFF)
  step("build loom" ${CMAKE_COMMAND} --build ${WORK_DIR}/loom-build -j ${JOBS})
  step("install loom" ${CMAKE_COMMAND} --install ${WORK_DIR}/loom-build --prefix ${WORK_DIR}/prefix)
  foreach(f lib/cmake/loom/loomConfig.cmake lib/cmake/loom/loomConfigVersion.cmake include/loom/autograd/loom.h
          include/loom/kernels/config.h include/loom/models/metrics.h)
    if(NOT EXISTS ${WORK_DIR}/prefix/${f})
      file(GLOB_RECURSE installed RELATIVE ${WORK_DIR}/prefix ${WORK_DIR}/prefix/*)
      message(FATAL_ERROR "consumer (package): the install has no ${f}; it has:\n${installed}")
    endif()
  endforeach()
  step("configure consumer" ${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/consumer-build ${common}
       -DLOOM_CONSUMER_MODE=package -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "subdirectory")
  step("configure consumer" ${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
       ${compilers}
       -DLOOM_CONSUMER_MODE=subdirectory -DLOOM_SOURCE_DIR=${LOOM_SOURCE_DIR})  # no build type: the parent's, empty
else()
  message(FATAL_ERROR "run.cmake: MODE must be package or subdirectory, not '${MODE}'")
endif()

step("build consumer (and loom)" ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build -j ${JOBS})
step("run consumer" ${WORK_DIR}/consumer-build/consumer)
message(STATUS "${step_output}")
if(NOT step_output MATCHES "loom consumer: ok" OR NOT step_output MATCHES "cuda backend = 0")
  message(FATAL_ERROR "consumer (${MODE}): unexpected output:\n${step_output}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})  # kept only when something failed, to look at
