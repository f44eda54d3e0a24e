#include "latentlab/conditioning/captions.hpp"

#include <cctype>

#include "latentlab/error.hpp"

namespace latentlab {
namespace {

// splitmix64: a fixed, platform-independent mix of (index, seed) into a template choice.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

const std::vector<std::string>& training_caption_templates() {
  static const std::vector<std::string> templates = {
      "{}",
      "a photo of {}",
      "a picture of {}",
      "{} on a black background",
      "a grayscale image of {}",
      "a small photo of {}",
      "a product photo of {}",
      "{}, centred",
      "an image showing {}",
      "a low-resolution photo of {}",
  };
  return templates;
}

const std::vector<std::string>& held_out_caption_templates() {
  static const std::vector<std::string> templates = {"a drawing of {}", "{} lying on the floor"};
  return templates;
}

std::string caption_noun(const std::string& class_name) {
  std::string noun;
  for (const char raw : class_name) {
    const auto c = static_cast<unsigned char>(raw);
    if (raw == '/')
      noun += " or ";
    else if (raw == '_')
      noun += ' ';
    else
      noun += static_cast<char>(std::tolower(c));
  }
  return noun;
}

std::string fill_caption(const std::string& templ, const std::string& class_name) {
  const auto at = templ.find("{}");
  if (at == std::string::npos) throw Error("caption template '" + templ + "' has no {}");
  const auto noun = caption_noun(class_name);
  const bool vowel = !noun.empty() && std::string("aeiou").find(noun.front()) != std::string::npos;
  return templ.substr(0, at) + (vowel ? "an " : "a ") + noun + templ.substr(at + 2);
}

std::string example_caption(std::int64_t index, const std::string& class_name, std::uint64_t seed) {
  const auto& templates = training_caption_templates();
  const auto choice = mix(static_cast<std::uint64_t>(index) ^ mix(seed)) % templates.size();
  return fill_caption(templates[choice], class_name);
}

}  // namespace latentlab
