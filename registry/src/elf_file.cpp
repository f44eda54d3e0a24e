#include "elf_file.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace latentlab::registry {
namespace {

constexpr std::uint64_t kMaxFileSize = 4ull << 30;  // 4 GiB: larger is not a plugin

// A copy of a POD from `bytes` at `offset`, or an exception when it would run past the end.
template <class T>
T read_at(const std::string& bytes, std::uint64_t offset, const char* what) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T))
    throw std::runtime_error(std::string("truncated or corrupt ELF file: ") + what + " lies past the end");
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

}  // namespace

ElfFile::ElfFile(const std::filesystem::path& path) {
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot read the file: " + ec.message());
  if (file_size > kMaxFileSize) throw std::runtime_error("file too large to be a plugin");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open the file for reading");
  bytes_.resize(static_cast<std::size_t>(file_size));
  in.read(bytes_.data(), static_cast<std::streamsize>(bytes_.size()));
  if (!in) throw std::runtime_error("cannot read the whole file");

  if (bytes_.size() < EI_NIDENT || std::memcmp(bytes_.data(), ELFMAG, SELFMAG) != 0)
    throw std::runtime_error("not an ELF file");
  if (bytes_[EI_CLASS] != ELFCLASS64 || bytes_[EI_DATA] != ELFDATA2LSB)
    throw std::runtime_error("not a 64-bit little-endian ELF file");
  const auto header = read_at<Elf64_Ehdr>(bytes_, 0, "the ELF header");
  if (header.e_type != ET_DYN) throw std::runtime_error("an ELF file, but not a shared library");
  if (header.e_shentsize != sizeof(Elf64_Shdr))
    throw std::runtime_error("corrupt ELF file: unexpected section header size");

  for (std::uint16_t i = 0; i < header.e_shnum; ++i) {
    const auto shdr = read_at<Elf64_Shdr>(bytes_, header.e_shoff + std::uint64_t{i} * sizeof(Elf64_Shdr),
                                          "a section header");
    sections_.push_back({shdr.sh_type, shdr.sh_addr, shdr.sh_offset, shdr.sh_size});
    if (shdr.sh_type != SHT_NOBITS &&
        (shdr.sh_offset > bytes_.size() || shdr.sh_size > bytes_.size() - shdr.sh_offset))
      throw std::runtime_error("truncated or corrupt ELF file: a section lies past the end");
  }

  std::size_t dynsym = sections_.size();
  std::uint32_t strtab_index = 0;
  for (std::uint16_t i = 0; i < header.e_shnum; ++i) {
    if (sections_[i].type != SHT_DYNSYM) continue;
    dynsym = i;
    strtab_index =
        read_at<Elf64_Shdr>(bytes_, header.e_shoff + std::uint64_t{i} * sizeof(Elf64_Shdr), "").sh_link;
    break;
  }
  if (dynsym == sections_.size()) throw std::runtime_error("a shared library without a dynamic symbol table");
  if (strtab_index >= sections_.size() || sections_[strtab_index].type != SHT_STRTAB)
    throw std::runtime_error("corrupt ELF file: the dynamic symbol table has no string table");
  const Section& strtab = sections_[strtab_index];

  const Section& symtab = sections_[dynsym];
  for (std::uint64_t offset = 0; offset + sizeof(Elf64_Sym) <= symtab.size; offset += sizeof(Elf64_Sym)) {
    const auto sym = read_at<Elf64_Sym>(bytes_, symtab.offset + offset, "a symbol");
    const unsigned binding = ELF64_ST_BIND(sym.st_info);
    const bool exported = (binding == STB_GLOBAL || binding == STB_WEAK) &&
                          ELF64_ST_VISIBILITY(sym.st_other) == STV_DEFAULT && sym.st_shndx != SHN_UNDEF;
    if (!exported) continue;
    if (sym.st_name >= strtab.size)
      throw std::runtime_error("corrupt ELF file: a symbol name lies past its table");
    const char* name = bytes_.data() + strtab.offset + sym.st_name;
    const std::size_t max_length = static_cast<std::size_t>(strtab.size - sym.st_name);
    symbols_.push_back(
        {std::string(name, strnlen(name, max_length)), sym.st_value, sym.st_size, sym.st_shndx});
  }
}

const ElfFile::Symbol* ElfFile::find(const std::string& name) const {
  for (const auto& symbol : symbols_)
    if (symbol.name == name) return &symbol;
  return nullptr;
}

bool ElfFile::exports(const std::string& name) const {
  return find(name) != nullptr;
}

std::optional<std::string> ElfFile::object_bytes(const std::string& name, std::size_t min_size) const {
  const Symbol* symbol = find(name);
  if (!symbol || symbol->size < min_size || symbol->section >= sections_.size()) return std::nullopt;
  const Section& section = sections_[symbol->section];
  if (section.type == SHT_NOBITS) return std::nullopt;  // zero-initialised: no bytes in the file
  if (symbol->value < section.addr || symbol->value - section.addr > section.size ||
      symbol->size > section.size - (symbol->value - section.addr))
    throw std::runtime_error("corrupt ELF file: symbol '" + name + "' lies outside its section");
  const std::uint64_t offset = section.offset + (symbol->value - section.addr);
  return bytes_.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(symbol->size));
}

}  // namespace latentlab::registry
