#include "elf_file.hpp"

#include <elf.h>

#include <cstring>
#include <stdexcept>

namespace latentlab::registry {

std::string ElfFile::read(std::uint64_t offset, std::uint64_t size, const char* what) const {
  if (offset > file_size_ || size > file_size_ - offset)
    throw std::runtime_error(std::string("truncated or corrupt ELF file: ") + what + " lies past the end");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in_) throw std::runtime_error(std::string("cannot read ") + what + " from the file");
  return bytes;
}

template <class T>
T ElfFile::read_struct(std::uint64_t offset, const char* what) const {
  const std::string bytes = read(offset, sizeof(T), what);
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

ElfFile::ElfFile(const std::filesystem::path& path) : in_(path, std::ios::binary) {
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot read the file: " + ec.message());
  if (!in_) throw std::runtime_error("cannot open the file for reading");

  if (file_size_ < EI_NIDENT) throw std::runtime_error("not an ELF file");
  const std::string ident = read(0, EI_NIDENT, "the ELF identification");
  if (std::memcmp(ident.data(), ELFMAG, SELFMAG) != 0) throw std::runtime_error("not an ELF file");
  if (ident[EI_CLASS] != ELFCLASS64 || ident[EI_DATA] != ELFDATA2LSB)
    throw std::runtime_error("not a 64-bit little-endian ELF file");
  const auto header = read_struct<Elf64_Ehdr>(0, "the ELF header");
  if (header.e_type != ET_DYN) throw std::runtime_error("an ELF file, but not a shared library");
  if (header.e_shnum == 0)
    throw std::runtime_error(
        "a shared library without section headers (removed by a stripping tool?); LatentLab reads "
        "the plugin's symbol table from them: keep them (plain `strip` does)");
  if (header.e_shentsize != sizeof(Elf64_Shdr))
    throw std::runtime_error("corrupt ELF file: unexpected section header size");
  const std::string table =
      read(header.e_shoff, std::uint64_t{header.e_shnum} * sizeof(Elf64_Shdr), "the section header table");

  std::vector<Elf64_Shdr> headers(header.e_shnum);
  std::memcpy(headers.data(), table.data(), table.size());
  for (const auto& shdr : headers) {
    sections_.push_back({shdr.sh_type, shdr.sh_addr, shdr.sh_offset, shdr.sh_size});
    if (shdr.sh_type != SHT_NOBITS &&
        (shdr.sh_offset > file_size_ || shdr.sh_size > file_size_ - shdr.sh_offset))
      throw std::runtime_error("truncated or corrupt ELF file: a section lies past the end");
  }

  std::size_t dynsym = sections_.size();
  for (std::size_t i = 0; i < headers.size(); ++i)
    if (headers[i].sh_type == SHT_DYNSYM) {
      dynsym = i;
      break;
    }
  if (dynsym == sections_.size()) throw std::runtime_error("a shared library without a dynamic symbol table");
  const std::uint32_t strtab_index = headers[dynsym].sh_link;
  if (strtab_index >= sections_.size() || sections_[strtab_index].type != SHT_STRTAB)
    throw std::runtime_error("corrupt ELF file: the dynamic symbol table has no string table");

  const Section& strtab_section = sections_[strtab_index];
  const std::string strtab = read(strtab_section.offset, strtab_section.size, "the dynamic string table");
  const Section& symtab = sections_[dynsym];
  const std::string symbols = read(symtab.offset, symtab.size, "the dynamic symbol table");
  for (std::uint64_t offset = 0; offset + sizeof(Elf64_Sym) <= symbols.size(); offset += sizeof(Elf64_Sym)) {
    Elf64_Sym sym;
    std::memcpy(&sym, symbols.data() + offset, sizeof sym);
    // What dlsym would find: global, weak or GNU-unique bindings, default or protected visibility.
    const unsigned binding = ELF64_ST_BIND(sym.st_info), visibility = ELF64_ST_VISIBILITY(sym.st_other);
    const bool exported = (binding == STB_GLOBAL || binding == STB_WEAK || binding == STB_GNU_UNIQUE) &&
                          (visibility == STV_DEFAULT || visibility == STV_PROTECTED) &&
                          sym.st_shndx != SHN_UNDEF;
    if (!exported) continue;
    if (sym.st_name >= strtab.size())
      throw std::runtime_error("corrupt ELF file: a symbol name lies past its table");
    const char* name = strtab.data() + sym.st_name;
    symbols_.push_back({std::string(name, strnlen(name, strtab.size() - sym.st_name)), sym.st_value,
                        sym.st_size, sym.st_shndx, ELF64_ST_TYPE(sym.st_info)});
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
  if (!symbol || symbol->type != STT_OBJECT || symbol->size < min_size || symbol->section >= sections_.size())
    return std::nullopt;
  const Section& section = sections_[symbol->section];
  if (section.type == SHT_NOBITS) return std::nullopt;  // zero-initialised: no bytes in the file
  if (symbol->value < section.addr || symbol->value - section.addr > section.size ||
      symbol->size > section.size - (symbol->value - section.addr))
    throw std::runtime_error("corrupt ELF file: symbol '" + name + "' lies outside its section");
  return read(section.offset + (symbol->value - section.addr), symbol->size, "a symbol's contents");
}

}  // namespace latentlab::registry
