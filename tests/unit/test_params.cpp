// Parameter schema validation: every error names the JSON path, the bad value and what is allowed.
#include <gtest/gtest.h>

#include "latentlab/error.hpp"
#include "latentlab/params.hpp"

using latentlab::ConfigError;
using latentlab::ParamSchema;
using latentlab::Range;
using nlohmann::json;

namespace {

ParamSchema example_schema() {
  return ParamSchema()
      .integer("T", 1000, "number of steps", Range::closed(1, 100000))
      .number("beta_end", 0.02, "last beta", Range::open(0, 1))
      .boolean("clip", true, "clip betas")
      .string("label", "x", "a label")
      .choice("variance", "posterior", {"posterior", "upper"}, "reverse variance")
      .number_list("betas", std::vector<double>{0.1, 0.2}, "explicit betas", Range::open(0, 1), 1);
}

// The message of the ConfigError thrown by validating `given`.
std::string error_of(const json& given, const ParamSchema& schema = example_schema()) {
  try {
    schema.validate(given, "schedule.params", "schedule 'example'");
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << given.dump();
  return {};
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "missing \"" << part << "\" in: " << text;
}

}  // namespace

TEST(Params, DefaultsFillEverythingWhenNothingIsGiven) {
  const auto params = example_schema().validate(json(), "p", "x");
  EXPECT_EQ(params.get_int("T"), 1000);
  EXPECT_DOUBLE_EQ(params.get_float("beta_end"), 0.02);
  EXPECT_TRUE(params.get_bool("clip"));
  EXPECT_EQ(params.get_string("label"), "x");
  EXPECT_EQ(params.get_string("variance"), "posterior");
  EXPECT_EQ(params.get_numbers("betas"), (std::vector<double>{0.1, 0.2}));
  EXPECT_EQ(params.json().size(), 6u);
}

TEST(Params, GivenValuesOverrideDefaults) {
  const auto params = example_schema().validate(
      json{{"T", 50}, {"beta_end", 0.5}, {"clip", false}, {"variance", "upper"}, {"betas", {0.3}}}, "p", "x");
  EXPECT_EQ(params.get_int("T"), 50);
  EXPECT_DOUBLE_EQ(params.get_float("beta_end"), 0.5);
  EXPECT_FALSE(params.get_bool("clip"));
  EXPECT_EQ(params.get_string("variance"), "upper");
  EXPECT_EQ(params.get_numbers("betas"), (std::vector<double>{0.3}));
}

TEST(Params, IntegersAcceptIntegralFloatsAndFloatsAcceptIntegers) {
  const auto params = example_schema().validate(json{{"T", 1e3}}, "p", "x");
  EXPECT_EQ(params.get_int("T"), 1000);
  EXPECT_TRUE(params.json()["T"].is_number_integer());
  EXPECT_NO_THROW(ParamSchema().number("x", 1.0, "", Range::closed(0, 5)).validate(json{{"x", 2}}, "p", "x"));
}

TEST(Params, UnknownKeySuggestsTheClosestAndListsValidOnes) {
  const auto message = error_of(json{{"beta_ends", 0.1}});
  expect_contains(message, "schedule.params.beta_ends");
  expect_contains(message, "unknown parameter \"beta_ends\"");
  expect_contains(message, "did you mean \"beta_end\"?");
  expect_contains(message, "valid parameters: T, beta_end, clip, label, variance, betas");
  expect_contains(message, "schedule 'example'");
}

// Every problem of one object is reported at once, one per line, so a user fixes them in one go.
TEST(Params, EveryProblemOfAnObjectIsReportedAtOnce) {
  try {
    example_schema().validate(json{{"beta_ends", 0.1}, {"T", 0}, {"clip", 1}}, "schedule.params",
                              "schedule 'e'");
    FAIL() << "no error";
  } catch (const latentlab::ConfigErrors& e) {
    ASSERT_EQ(e.problems().size(), 3u) << e.what();
    expect_contains(e.problems()[0], "schedule.params.beta_ends: unknown parameter");
    expect_contains(e.problems()[1], "schedule.params.T: ");
    expect_contains(e.problems()[2], "schedule.params.clip: expected true or false");
    EXPECT_EQ(std::string(e.what()), e.problems()[0] + "\n" + e.problems()[1] + "\n" + e.problems()[2]);
    EXPECT_EQ(latentlab::problems_of(e), e.problems());
  }
  // One problem stays a plain ConfigError with that one message.
  try {
    example_schema().validate(json{{"T", 0}}, "p", "x");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(dynamic_cast<const latentlab::ConfigErrors*>(&e), nullptr);
    EXPECT_EQ(latentlab::problems_of(e), std::vector<std::string>{e.what()});
  }
}

TEST(Params, UnknownKeyFarFromAnyNameHasNoSuggestion) {
  const auto message = error_of(json{{"completely_unrelated", 1}});
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST(Params, WrongTypesNameThePathTheValueAndTheAllowedType) {
  auto message = error_of(json{{"T", "abc"}});
  expect_contains(message, "schedule.params.T: expected an integer, got \"abc\" (a string)");
  expect_contains(message, "allowed: an integer in [1, 100000]");

  message = error_of(json{{"T", 2.5}});
  expect_contains(message, "expected an integer, got 2.5");

  message = error_of(json{{"beta_end", true}});
  expect_contains(message, "schedule.params.beta_end: expected a number, got true (a boolean)");

  message = error_of(json{{"clip", 1}});
  expect_contains(message, "schedule.params.clip: expected true or false, got 1");

  message = error_of(json{{"label", 3}});
  expect_contains(message, "schedule.params.label: expected a string");

  message = error_of(json{{"betas", 0.1}});
  expect_contains(message, "schedule.params.betas: expected a list of numbers, got 0.1");

  message = error_of(json{{"betas", {0.1, "x"}}});
  expect_contains(message, "schedule.params.betas[1]: expected a number, got \"x\"");
}

TEST(Params, OutOfRangeValuesNameTheRange) {
  auto message = error_of(json{{"T", 0}});
  expect_contains(message, "schedule.params.T: 0 is out of range; allowed: an integer in [1, 100000]");

  message = error_of(json{{"beta_end", 1.0}});
  expect_contains(message, "schedule.params.beta_end: 1.0 is out of range; allowed: a number in (0, 1)");

  message = error_of(json{{"betas", {0.1, 1.5}}});
  expect_contains(message, "schedule.params.betas[1]: 1.5 is out of range");
  expect_contains(message, "each in (0, 1)");

  message = error_of(json{{"betas", json::array()}});
  expect_contains(message, "0 element(s), fewer than 1");
}

TEST(Params, EnumRejectsUnknownChoiceWithSuggestion) {
  const auto message = error_of(json{{"variance", "uper"}});
  expect_contains(message,
                  "schedule.params.variance: \"uper\" is not a valid choice (did you mean \"upper\"?)");
  expect_contains(message, "allowed: one of posterior, upper");
}

TEST(Params, MissingRequiredParameterSaysWhatIsExpected) {
  const auto schema =
      ParamSchema().number_list("betas", std::nullopt, "beta_t for t = 1..T", Range::open(0, 1), 1);
  const auto message = error_of(json::object(), schema);
  expect_contains(message, "schedule.params.betas: required parameter of schedule 'example' is missing");
  expect_contains(message, "expected a list of numbers (at least 1), each in (0, 1)");
}

TEST(Params, NonObjectParametersAreRejected) {
  const auto message = error_of(json{1, 2});
  expect_contains(message,
                  "schedule.params: expected an object of parameters for schedule 'example', got [1,2]");
}

TEST(Params, NonFiniteNumbersAreRejected) {
  const auto schema = ParamSchema().number("x", 1.0, "");
  const auto message = error_of(json{{"x", std::numeric_limits<double>::infinity()}}, schema);
  expect_contains(message, "schedule.params.x: inf is not a finite number");
}

TEST(Params, SchemaRejectsInvalidDefaultsAndDuplicateNames) {
  EXPECT_THROW(ParamSchema().integer("T", 0, "", Range::closed(1, 10)), ConfigError);
  EXPECT_THROW(ParamSchema().integer("T", 1, "").integer("T", 2, ""), latentlab::Error);
  EXPECT_THROW(ParamSchema().choice("c", "z", {"a", "b"}, ""), ConfigError);
}

TEST(Params, ReadingAnUndeclaredParameterIsAnError) {
  const auto params = example_schema().validate(json(), "p", "x");
  EXPECT_THROW(params.get_int("nope"), latentlab::Error);
}

TEST(Params, SchemaJsonDescribesEveryParameter) {
  const auto described = example_schema().to_json();
  ASSERT_EQ(described.size(), 6u);
  EXPECT_EQ(described[0]["name"], "T");
  EXPECT_EQ(described[0]["type"], "int");
  EXPECT_EQ(described[0]["default"], 1000);
  EXPECT_EQ(described[0]["min"], 1.0);
  EXPECT_EQ(described[4]["choices"], (json{"posterior", "upper"}));
}
