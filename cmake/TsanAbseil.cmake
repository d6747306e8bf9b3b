# ThreadSanitizer builds (-DPROMPTCACHE_SANITIZE=thread) against Debian's
# abseil, which is not built for TSan: every executable built here links
# tools/tsan/absl_annotations.cc, and the linker routes its calls to the
# absl::Mutex / Notification functions wrapped there (--wrap, one per
# `__wrap_<symbol>(` in that file) so that TSan sees each lock. The canary
# tests check that the build catches a race and does not report a lock.
set(PROMPTCACHE_TSAN_SHIM ${PROJECT_SOURCE_DIR}/tools/tsan/absl_annotations.cc)

function(promptcache_tsan_wrap_options out)
  file(STRINGS ${PROMPTCACHE_TSAN_SHIM} lines REGEX "__wrap_[A-Za-z0-9_]+\\(")
  set(options "")
  foreach(line IN LISTS lines)
    string(REGEX MATCH "__wrap_([A-Za-z0-9_]+)\\(" unused "${line}")
    list(APPEND options "LINKER:--wrap=${CMAKE_MATCH_1}")
  endforeach()
  list(REMOVE_DUPLICATES options)
  set(${out} ${options} PARENT_SCOPE)
endfunction()

# Every executable target of `dir` and of the directories below it.
function(promptcache_executables dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  set(found "")
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "EXECUTABLE")
      list(APPEND found ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    promptcache_executables(${sub} below)
    list(APPEND found ${below})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

function(promptcache_tsan_annotate_executables)
  promptcache_tsan_wrap_options(wraps)
  if(PROMPTCACHE_BUILD_TESTS)
    add_executable(tsan_canary tools/tsan/canary.cc)
    target_link_libraries(tsan_canary PRIVATE absl::synchronization)
    # The same program without the annotations: its lock must be reported.
    add_executable(tsan_canary_unannotated tools/tsan/canary.cc)
    target_link_libraries(tsan_canary_unannotated PRIVATE absl::synchronization)
    foreach(mode locked await notify)
      add_test(NAME tsan_canary_${mode} COMMAND tsan_canary ${mode})
    endforeach()
    add_test(NAME tsan_canary_race COMMAND tsan_canary race)
    add_test(NAME tsan_canary_unannotated_lock
      COMMAND tsan_canary_unannotated locked)
    set_tests_properties(tsan_canary_race tsan_canary_unannotated_lock
      PROPERTIES PASS_REGULAR_EXPRESSION "ThreadSanitizer: data race")
    # The judge of tools/ci_tsan.sh counts the canary's race as ours.
    add_test(NAME tsan_judge_fails_on_our_race
      COMMAND bash -c "dir=$(mktemp -d) && TSAN_OPTIONS='halt_on_error=0 exitcode=0 log_path='$dir/r $<TARGET_FILE:tsan_canary> race && ! bash ${PROJECT_SOURCE_DIR}/tools/tsan/judge_reports.sh ${PROJECT_SOURCE_DIR} $dir/r.*")
    # The canaries stop at their first report, whatever CI's options.
    set_tests_properties(tsan_canary_locked tsan_canary_await
      tsan_canary_notify tsan_canary_race tsan_canary_unannotated_lock
      PROPERTIES LABELS unit ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1")
    set_tests_properties(tsan_judge_fails_on_our_race PROPERTIES LABELS unit)
  endif()
  promptcache_executables(${PROJECT_SOURCE_DIR} executables)
  foreach(t IN LISTS executables)
    if(t STREQUAL "tsan_canary_unannotated")
      continue()
    endif()
    target_sources(${t} PRIVATE ${PROMPTCACHE_TSAN_SHIM})
    target_link_options(${t} PRIVATE ${wraps})
  endforeach()
endfunction()
