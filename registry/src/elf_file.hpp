#pragma once
// A small, bounds-checked reader of a shared library's dynamic symbol table (.dynsym/.dynstr), so the
// registry can check a plugin without running any of it. (Boost 1.74's library_info reads .symtab
// only, which stripped libraries do not have.)
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace latentlab::registry {

class ElfFile {
 public:
  // Reads and checks `path`: a 64-bit little-endian ELF shared object with section headers and a
  // dynamic symbol table.
  // Throws std::runtime_error saying what is wrong.
  explicit ElfFile(const std::filesystem::path& path);

  // Whether a defined, exported (global or weak, default visibility) symbol `name` exists.
  bool exports(const std::string& name) const;
  // The bytes of the exported data symbol `name` as stored in the file (nullopt when it is not
  // exported, has no file contents, or is shorter than `min_size`). Throws on out-of-bounds offsets.
  std::optional<std::string> object_bytes(const std::string& name, std::size_t min_size) const;

 private:
  struct Symbol {
    std::string name;
    std::uint64_t value, size;
    std::uint16_t section;
    unsigned type;  // STT_*
  };
  struct Section {
    std::uint32_t type;
    std::uint64_t addr, offset, size;
  };
  const Symbol* find(const std::string& name) const;
  // `size` bytes at `offset` of the file; throws when they lie past its end. Only the headers and
  // tables needed are read, never the whole library.
  std::string read(std::uint64_t offset, std::uint64_t size, const char* what) const;
  template <class T>
  T read_struct(std::uint64_t offset, const char* what) const;

  mutable std::ifstream in_;
  std::uint64_t file_size_ = 0;
  std::vector<Section> sections_;
  std::vector<Symbol> symbols_;  // exported and defined only
};

}  // namespace latentlab::registry
