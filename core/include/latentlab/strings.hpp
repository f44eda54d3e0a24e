#pragma once
// Small string helpers used for error messages.
#include <string>
#include <vector>

#include "latentlab/export.hpp"

namespace latentlab {

// Levenshtein edit distance.
LATENTLAB_API std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `word` if it is close enough to be a plausible typo, else "".
LATENTLAB_API std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "" when nothing is close.
LATENTLAB_API std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// "a, b, c".
LATENTLAB_API std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

// The text up to the first newline: an exception message without LibTorch's source location and
// backtrace, for one-line errors.
LATENTLAB_API std::string first_line(const std::string& text);

// A double printed with enough digits to read back exactly ("0.1", "1.5e-05").
LATENTLAB_API std::string format_number(double value);

}  // namespace latentlab
