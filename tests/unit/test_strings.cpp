#include <gtest/gtest.h>

#include "latentlab/strings.hpp"

using namespace latentlab;

TEST(Strings, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
  EXPECT_EQ(edit_distance("trian", "train"), 1u);  // a swap of neighbours is one edit
  EXPECT_EQ(closest_match("trian", {"train", "eval"}), "train");
}

TEST(Strings, ClosestMatchOnlyForPlausibleTypos) {
  EXPECT_EQ(closest_match("lienar", {"linear", "cosine", "custom"}), "linear");
  EXPECT_EQ(closest_match("cos", {"linear", "cosine"}), "cosine");  // a prefix
  EXPECT_EQ(closest_match("zzzzzz", {"linear", "cosine"}), "");
  EXPECT_EQ(did_you_mean("lineer", {"linear"}), " (did you mean \"linear\"?)");
}

TEST(Strings, FormatNumberRoundTrips) {
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(1.0), "1");
  EXPECT_EQ(format_number(1e-5), "1e-05");
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(format_number(third)), third);
}
