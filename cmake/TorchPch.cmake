# One precompiled <torch/torch.h> shared by every in-tree target that includes LibTorch headers.
# All targets use the same flags (PIC, hidden visibility, C++17), so GCC accepts the one PCH.
if(LATENTLAB_TORCH_PCH)
  add_library(latentlab_torch_pch OBJECT "${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp")
  target_link_libraries(latentlab_torch_pch PRIVATE ${TORCH_LIBRARIES})
  target_precompile_headers(latentlab_torch_pch PRIVATE <torch/torch.h>)
endif()

function(latentlab_use_torch_pch target)
  if(LATENTLAB_TORCH_PCH)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      # Executables would get -fPIE, which GCC rejects for a PCH built with -fPIC; -fPIC objects link
      # into a PIE just as well.
      set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
      target_compile_options(${target} PRIVATE -fPIC)
    endif()
    target_precompile_headers(${target} REUSE_FROM latentlab_torch_pch)
  endif()
endfunction()
