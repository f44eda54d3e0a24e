#pragma once
// The word-level tokenizer of the `tokens` conditioner (tau_theta for text, Appendix E.2.1): a
// vocabulary built from the training captions and saved with the model, so a trained text-to-image
// model needs no external vocabulary file (docs/conditioning.md).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/torch.h>

#include "latentlab/export.hpp"

namespace latentlab {

class LATENTLAB_API WordTokenizer {
 public:
  // Ids of the special tokens, before the words.
  static constexpr std::int64_t kPad = 0;
  static constexpr std::int64_t kStart = 1;
  static constexpr std::int64_t kEnd = 2;
  static constexpr std::int64_t kSpecials = 3;

  // The words of a text: lower-cased runs of ASCII letters and digits ("T-shirt/top" -> "t", "shirt",
  // "top"); everything else separates words.
  static std::vector<std::string> words(const std::string& text);

  // The words seen at least `min_count` times in `captions`, most frequent first (ties in alphabetical
  // order), at most `max_words` of them.
  static WordTokenizer build(const std::vector<std::string>& captions, std::int64_t max_words,
                             std::int64_t min_count = 1);

  // The text written by to_text(). Throws Error when it is not such a text.
  static WordTokenizer from_text(const std::string& text);
  // One word per line, in id order, after a header line naming the format.
  std::string to_text() const;

  // [start, w_1, ..., w_n, end, pad, ...]: exactly `length` ids (>= 2); words past length - 2 are
  // dropped, and words outside the vocabulary are left out: with every training word in the
  // vocabulary, an unknown-word token would never be trained, and an untrained embedding in a new
  // caption only adds noise (docs/conditioning.md). The empty text gives [start, end, pad...], the
  // unconditional value of condition dropout.
  std::vector<std::int64_t> encode(const std::string& text, std::int64_t length) const;
  // [B, length] int64 on the CPU.
  torch::Tensor encode(const std::vector<std::string>& texts, std::int64_t length) const;

  // Number of ids: the special tokens and the words.
  std::int64_t size() const { return kSpecials + static_cast<std::int64_t>(words_.size()); }
  const std::vector<std::string>& vocabulary() const { return words_; }

 private:
  void index();
  std::vector<std::string> words_;                     // id kSpecials + i is words_[i]
  std::unordered_map<std::string, std::int64_t> ids_;  // word -> id
};

}  // namespace latentlab
