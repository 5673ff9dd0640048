# Builds and runs tests/consumer (a project outside loom's tree) against loom both ways, CPU backend only:
#   cmake -DLOOM_SOURCE_DIR=... -DWORK_DIR=... [-DGENERATOR=Ninja] [-DCXX_COMPILER=...] [-DC_COMPILER=...]
#         [-DJOBS=2] -P run.cmake
# 1. add_subdirectory: the consumer add_subdirectory()s loom's source tree with loom's defaults for a
#    subproject (the only LOOM_* option given is LOOM_INSTALL, so that step 2 can install this build: the
#    others must already mean CPU only, no tests, benchmarks or tools). loom is compiled here, once, at -O0
#    (no build type), the slow part: about a minute on 2 cores.
# 2. find_package: that build of loom is installed (`cmake --install` of its folder) into WORK_DIR/prefix
#    and a second consumer build finds it with find_package(loom); only main.cpp is compiled.
# Each consumer program must print "ok" and no CUDA backend.
cmake_minimum_required(VERSION 3.25)
foreach(v LOOM_SOURCE_DIR WORK_DIR)
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
set(consumer_src ${CMAKE_CURRENT_LIST_DIR})

function(step name)
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  string(TIMESTAMP t1 "%s")
  math(EXPR dt "${t1} - ${t0}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer: ${name} failed (${rc}) after ${dt} s:\n${out}")
  endif()
  message(STATUS "consumer: ${name} ok (${dt} s)")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

function(run_consumer way build)
  step("${way}: run consumer" ${build}/consumer)
  message(STATUS "${step_output}")
  if(NOT step_output MATCHES "loom consumer: ok" OR NOT step_output MATCHES "cuda backend = 0")
    message(FATAL_ERROR "consumer (${way}): unexpected output:\n${step_output}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(sub ${WORK_DIR}/subdirectory-build)
step("add_subdirectory: configure consumer" ${CMAKE_COMMAND} -S ${consumer_src} -B ${sub} -G ${GENERATOR} ${compilers}
     -DLOOM_CONSUMER_MODE=subdirectory -DLOOM_SOURCE_DIR=${LOOM_SOURCE_DIR} -DLOOM_INSTALL=ON)  # no build type
step("add_subdirectory: build consumer and loom" ${CMAKE_COMMAND} --build ${sub} -j ${JOBS})
run_consumer(add_subdirectory ${sub})

step("find_package: install loom" ${CMAKE_COMMAND} --install ${sub}/loom --prefix ${WORK_DIR}/prefix)
foreach(f lib/cmake/loom/loomConfig.cmake lib/cmake/loom/loomConfigVersion.cmake include/loom/autograd/loom.h
        include/loom/kernels/config.h include/loom/models/metrics.h)
  if(NOT EXISTS ${WORK_DIR}/prefix/${f})
    file(GLOB_RECURSE installed RELATIVE ${WORK_DIR}/prefix ${WORK_DIR}/prefix/*)
    message(FATAL_ERROR "consumer (find_package): the install has no ${f}; it has:\n${installed}")
  endif()
endforeach()
set(pkg ${WORK_DIR}/package-build)
step("find_package: configure consumer" ${CMAKE_COMMAND} -S ${consumer_src} -B ${pkg} -G ${GENERATOR} ${compilers}
     -DLOOM_CONSUMER_MODE=package -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
step("find_package: build consumer" ${CMAKE_COMMAND} --build ${pkg} -j ${JOBS})
run_consumer(find_package ${pkg})
file(REMOVE_RECURSE ${WORK_DIR})  # kept only when something failed, to look at
