// Translation unit that owns the precompiled LibTorch header (see cmake/TorchPch.cmake).
