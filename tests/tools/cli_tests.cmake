# End-to-end tests of the promptcache CLI; included from tests/CMakeLists.txt.
if(TARGET promptcache_cli)
  if(NOT TARGET GTest::gtest_main)
    find_package(GTest REQUIRED CONFIG)
  endif()
  add_executable(cli_test ${CMAKE_CURRENT_LIST_DIR}/cli_test.cc)
  target_link_libraries(cli_test
    PRIVATE promptcache::promptcache nlohmann_json::nlohmann_json
            GTest::gmock GTest::gtest_main)
  # The test runs the real binary, wherever the build put it.
  target_compile_definitions(cli_test
    PRIVATE PROMPTCACHE_CLI_PATH="$<TARGET_FILE:promptcache_cli>")
  target_compile_options(cli_test PRIVATE ${PROMPTCACHE_WARNINGS})
  target_include_directories(cli_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  add_dependencies(cli_test promptcache_cli)
  add_test(NAME cli_test COMMAND cli_test)
  set_tests_properties(cli_test PROPERTIES LABELS e2e)
endif()
