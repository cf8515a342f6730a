# The SOURCE_DATE_EPOCH a reproducible .deb is stamped with (CPack sets every archive
# member's time to it): the environment's, else the time of the last commit that touched
# `paths` below `dir` (commits elsewhere must not change the package), else a constant
# (not committed yet, or not a checkout: any constant keeps rebuilds identical).
# Writes it to `stamp_file` only when the value changes, so a new epoch repackages and
# nothing else does.
#   bi_source_date_epoch(<out_var> <dir> <stamp_file> [path...])
function(bi_source_date_epoch out_var dir stamp_file)
  if(DEFINED ENV{SOURCE_DATE_EPOCH})
    set(epoch "$ENV{SOURCE_DATE_EPOCH}")
  else()
    find_package(Git QUIET)
    set(epoch "")
    if(GIT_FOUND)
      execute_process(
        COMMAND "${GIT_EXECUTABLE}" log -1 --format=%ct -- ${ARGN}
        WORKING_DIRECTORY "${dir}"
        OUTPUT_VARIABLE epoch
        OUTPUT_STRIP_TRAILING_WHITESPACE
        ERROR_QUIET)
    endif()
    if(NOT epoch MATCHES "^[0-9]+$")
      set(epoch 1700000000)
    endif()
  endif()
  file(CONFIGURE OUTPUT "${stamp_file}" CONTENT "${epoch}\n")
  set(${out_var} "${epoch}" PARENT_SCOPE)
endfunction()
