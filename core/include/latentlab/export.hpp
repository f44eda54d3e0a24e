#pragma once
// Symbol visibility. Everything is built with -fvisibility=hidden; the SDK marks what it exports.
#if defined(_WIN32)
#error "LatentLab supports ELF platforms (Linux) only"
#endif
#define LATENTLAB_API __attribute__((visibility("default")))
