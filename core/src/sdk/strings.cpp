#include "latentlab/strings.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace latentlab {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours ("trian"
  // for "train") each cost one; case is ignored.
  auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  };
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      current[j] = std::min(
          {previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1]))
        current[j] = std::min(current[j], before[j - 2] + 1);
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  if (word.empty()) return {};
  // A one- or two-letter typo of a name wins ("ch_mlt" is "ch_mult", not "ch").
  std::string near;
  std::size_t near_distance = 3;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < near_distance && d * 3 <= std::max(word.size(), candidate.size())) {
      near_distance = d;
      near = candidate;
    }
  }
  if (!near.empty()) return near;
  // A name the word is a prefix of ("beta" for "beta_start"), or that is a prefix of the word; the
  // shortest such wins.
  std::string prefix_match;
  for (const auto& candidate : candidates) {
    const bool prefix = word.size() >= 2 && (candidate.rfind(word, 0) == 0 || word.rfind(candidate, 0) == 0);
    if (prefix && (prefix_match.empty() || candidate.size() < prefix_match.size())) prefix_match = candidate;
  }
  if (!prefix_match.empty()) return prefix_match;

  std::string best;
  std::size_t best_distance = std::string::npos;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  // A plausible typo: at most a third of the longer name changed (at least one edit), and not a
  // complete replacement ("x" is no typo of "T").
  const std::size_t longer = std::max(word.size(), best.size());
  const std::size_t limit = std::max<std::size_t>(1, longer / 3);
  return (best_distance <= limit && best_distance < longer) ? best : std::string();
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string match = closest_match(word, candidates);
  return match.empty() ? std::string() : " (did you mean \"" + match + "\"?)";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string format_number(double value) {
  char buffer[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace latentlab
