# cmake -DTOOL=<build-image> -DMAN=<out.1.gz> -DCOMPLETION=<out> -P generate-docs.cmake
# The man page and bash completion come from the tool's own tables (hidden commands __man
# and __bash-completion). gzip -n: no name or time stamp in the header (reproducible).
execute_process(COMMAND "${TOOL}" __man OUTPUT_FILE "${MAN}.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TOOL} __man failed: ${rc}")
endif()
execute_process(COMMAND gzip -9n -c "${MAN}.tmp" OUTPUT_FILE "${MAN}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed: ${rc}")
endif()
file(REMOVE "${MAN}.tmp")
execute_process(COMMAND "${TOOL}" __bash-completion OUTPUT_FILE "${COMPLETION}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TOOL} __bash-completion failed: ${rc}")
endif()
