#include "latentlab/conditioning/tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "latentlab/error.hpp"

namespace latentlab {
namespace {

constexpr const char* kHeader = "latentlab-word-tokenizer 1";

}  // namespace

std::vector<std::string> WordTokenizer::words(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (const char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    if (c < 128 && std::isalnum(c)) {
      word.push_back(static_cast<char>(std::tolower(c)));
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

WordTokenizer WordTokenizer::build(const std::vector<std::string>& captions, std::int64_t max_words,
                                   std::int64_t min_count) {
  if (max_words < 1) throw ConfigError("vocabulary: max_words must be at least 1");
  std::map<std::string, std::int64_t> counts;  // ordered: ties below resolve alphabetically
  for (const auto& caption : captions)
    for (auto& word : words(caption)) ++counts[word];
  std::vector<std::pair<std::string, std::int64_t>> ranked(counts.begin(), counts.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  WordTokenizer tokenizer;
  for (const auto& [word, count] : ranked) {
    if (count < min_count || static_cast<std::int64_t>(tokenizer.words_.size()) >= max_words) break;
    tokenizer.words_.push_back(word);
  }
  tokenizer.index();
  return tokenizer;
}

void WordTokenizer::index() {
  ids_.clear();
  for (std::size_t i = 0; i < words_.size(); ++i) {
    if (!ids_.emplace(words_[i], kSpecials + static_cast<std::int64_t>(i)).second)
      throw Error("tokenizer vocabulary: '" + words_[i] + "' appears twice");
  }
}

WordTokenizer WordTokenizer::from_text(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    throw Error("not a LatentLab tokenizer vocabulary (its first line should be '" + std::string(kHeader) +
                "')");
  WordTokenizer tokenizer;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (words(line) != std::vector<std::string>{line})
      throw Error("tokenizer vocabulary: '" + line + "' is not a lower-case word");
    tokenizer.words_.push_back(line);
  }
  tokenizer.index();
  return tokenizer;
}

std::string WordTokenizer::to_text() const {
  std::string text = std::string(kHeader) + "\n";
  for (const auto& word : words_) text += word + "\n";
  return text;
}

std::vector<std::int64_t> WordTokenizer::encode(const std::string& text, std::int64_t length) const {
  if (length < 2) throw ConfigError("tokenizer: a sequence needs room for its start and end tokens (>= 2)");
  std::vector<std::int64_t> out(static_cast<std::size_t>(length), kPad);
  std::size_t n = 0;
  out[n++] = kStart;
  for (const auto& word : words(text)) {
    if (static_cast<std::int64_t>(n) >= length - 1) break;
    const auto it = ids_.find(word);
    if (it != ids_.end()) out[n++] = it->second;
  }
  out[n] = kEnd;
  return out;
}

torch::Tensor WordTokenizer::encode(const std::vector<std::string>& texts, std::int64_t length) const {
  auto out = torch::empty({static_cast<std::int64_t>(texts.size()), length}, torch::kInt64);
  auto* data = out.data_ptr<std::int64_t>();
  for (std::size_t b = 0; b < texts.size(); ++b) {
    const auto ids = encode(texts[b], length);
    std::copy(ids.begin(), ids.end(), data + b * static_cast<std::size_t>(length));
  }
  return out;
}

}  // namespace latentlab
