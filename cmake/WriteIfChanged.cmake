# write_if_changed(FILE CONTENT): writes CONTENT to FILE only when it differs, so that a generated
# source that did not change does not trigger a rebuild.
function(write_if_changed file content)
  set(old "")
  if(EXISTS "${file}")
    file(READ "${file}" old)
  endif()
  if(NOT old STREQUAL content)
    file(WRITE "${file}" "${content}")
  endif()
endfunction()
