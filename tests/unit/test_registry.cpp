// The registry against fixture libraries: a good one, one without the entry point, a wrong SDK API
// version, a wrong LibTorch version, a duplicate name, a throwing factory, a throwing register
// function, and a file that is not a shared library. The test process must survive all of them.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "latentlab/error.hpp"
#include "latentlab/registry/registry.hpp"
#include "latentlab/schedule.hpp"

namespace fs = std::filesystem;
using latentlab::ConfigError;
using latentlab::Schedule;
using latentlab::registry::Registry;

namespace {

fs::path fixture(const std::string& name) {
  return fs::path(LATENTLAB_FIXTURE_DIR) / (name + ".so");
}

// The recorded reason for `file`, or "" when it did not fail.
std::string reason_for(const Registry& registry, const fs::path& file) {
  for (const auto& failure : registry.failed())
    if (fs::equivalent(failure.path, file)) return failure.reason;
  return {};
}

// Loads `file`, expects the registry to reject it, and returns the recorded reason.
std::string rejected(Registry& registry, const fs::path& file) {
  EXPECT_FALSE(registry.load_library(file)) << file;
  return reason_for(registry, file);
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "missing \"" << part << "\" in: " << text;
}

}  // namespace

TEST(Registry, LoadsAGoodLibraryAndCreatesItsPlugin) {
  Registry registry;
  ASSERT_TRUE(registry.load_library(fixture("fixture_good")));
  ASSERT_EQ(registry.loaded().size(), 1u);
  EXPECT_EQ(registry.loaded()[0].name, "fixture-good");
  EXPECT_EQ(registry.loaded()[0].version, "1.2.3");
  EXPECT_EQ(registry.loaded()[0].provides, (std::vector<std::string>{"schedule/fixture_constant"}));
  EXPECT_TRUE(registry.failed().empty());

  const auto schedule = registry.create<Schedule>("fixture_constant", {{"T", 5}}, "schedule");
  EXPECT_EQ(schedule->num_steps(), 5);
  EXPECT_DOUBLE_EQ(schedule->beta(3), 0.1);
}

TEST(Registry, LoadingTheSameFileTwiceIsANoOp) {
  Registry registry;
  EXPECT_TRUE(registry.load_library(fixture("fixture_good")));
  EXPECT_FALSE(registry.load_library(fixture("fixture_good")));
  EXPECT_EQ(registry.loaded().size(), 1u);
  EXPECT_TRUE(registry.failed().empty());
}

TEST(Registry, LibraryWithoutEntryPointIsRejectedWithoutRunningIt) {
  Registry registry;
  const auto reason = rejected(registry, fixture("fixture_no_entry"));
  expect_contains(reason, "does not export 'latentlab_plugin_entry'");
  expect_contains(reason, "LATENTLAB_PLUGIN");
}

TEST(Registry, WrongApiVersionIsRejectedWithoutLoadingIt) {
  // The fixture's static initialiser aborts the process if it is ever loaded, here or in the probe.
  Registry registry;
  const auto reason = rejected(registry, fixture("fixture_wrong_api"));
  expect_contains(reason,
                  "incompatible SDK API version (plugin: " + std::to_string(LATENTLAB_SDK_API_VERSION + 998) +
                      ", host: " + std::to_string(LATENTLAB_SDK_API_VERSION) + ")");
  expect_contains(reason, "rebuild the plugin");
}

TEST(Registry, WrongTorchVersionIsRejectedWithoutLoadingIt) {
  Registry registry;  // as above: loading it would abort
  const auto reason = rejected(registry, fixture("fixture_wrong_torch"));
  expect_contains(reason, "built against LibTorch 9.0.0 but the host uses LibTorch " TORCH_VERSION);
  expect_contains(reason, "major.minor must match");
}

TEST(Registry, DuplicateNameIsRejectedNamingBothFiles) {
  Registry registry;
  ASSERT_TRUE(registry.load_library(fixture("fixture_good")));
  const auto reason = rejected(registry, fixture("fixture_duplicate"));
  expect_contains(reason, "registers schedule 'fixture_constant'");
  expect_contains(reason, fs::canonical(fixture("fixture_good")).string() + " already provides");
  // The first library keeps the name.
  EXPECT_NE(registry.find("schedule", "fixture_constant").library.string().find("fixture_good"),
            std::string::npos);
}

TEST(Registry, ThrowingFactoryBecomesAnErrorNamingPluginAndLibrary) {
  Registry registry;
  ASSERT_TRUE(registry.load_library(fixture("fixture_throwing_factory")));
  try {
    registry.create<Schedule>("fixture_throws", nlohmann::json::object(), "schedule");
    FAIL() << "no exception";
  } catch (const latentlab::Error& e) {
    const std::string message = e.what();
    expect_contains(message, "schedule 'fixture_throws'");
    expect_contains(message, "fixture_throwing_factory.so");
    expect_contains(message, "deliberate failure in the constructor");
  }
}

TEST(Registry, ThrowingRegisterFunctionContributesNothing) {
  Registry registry;
  expect_contains(rejected(registry, fixture("fixture_throwing_register")),
                  "its register function failed: deliberate failure while registering");
  EXPECT_TRUE(registry.entries().empty());
  EXPECT_THROW(registry.find("schedule", "fixture_half_registered"), ConfigError);
}

TEST(Registry, FileThatIsNotALibraryIsRejected) {
  Registry registry;
  expect_contains(rejected(registry, fixture("fixture_not_a_library")), "not a shared library");
}

TEST(Registry, TruncatedLibraryIsRejected) {
  // The first kilobyte of a real plugin: an ELF header whose sections are cut off.
  const fs::path dir = fs::temp_directory_path() / "latentlab_registry_test";
  fs::create_directories(dir);
  const fs::path truncated = dir / "truncated.so";
  {
    std::ifstream in(fixture("fixture_good"), std::ios::binary);
    std::string head(1024, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(truncated, std::ios::binary) << head;
  }
  Registry registry;
  EXPECT_FALSE(rejected(registry, truncated).empty());
  fs::remove_all(dir);
}

TEST(Registry, StaticInitialiserThatCrashesIsReportedAndTheHostSurvives) {
  Registry registry;
  const auto reason = rejected(registry, fixture("fixture_crashing_init"));
  expect_contains(reason, "crashed with signal 11");
  expect_contains(reason, "the host is unharmed");
  expect_contains(reason, "its last output on stderr: fixture_crashing_init: about to crash");
  EXPECT_THROW(registry.find("schedule", "fixture_crashing"), ConfigError);
}

TEST(Registry, CrashIsCaughtEvenWhenChildrenAreReapedElsewhere) {
  // With SIGCHLD ignored the kernel reaps the probe itself and waitpid cannot report its status; the
  // status pipe still tells that it did not come through.
  const auto previous = std::signal(SIGCHLD, SIG_IGN);
  Registry registry;
  const bool loaded = registry.load_library(fixture("fixture_crashing_init"));
  std::signal(SIGCHLD, previous);
  EXPECT_FALSE(loaded);
  expect_contains(reason_for(registry, fixture("fixture_crashing_init")), "while being loaded");
}

TEST(Registry, RegisterFunctionThatHangsIsReportedAfterTheTimeout) {
  Registry registry(latentlab::registry::RegistryOptions{true, std::chrono::milliseconds(1500)});
  const fs::path file = fs::path(LATENTLAB_FIXTURE_EXTRA_DIR) / "fixture_hanging_register.so";
  expect_contains(rejected(registry, file), "hung for more than 1.5 s while being loaded");
}

TEST(Registry, StrippedLibraryLoads) {
  // No .symtab: the entry point and ABI record are found in .dynsym.
  Registry registry;
  const fs::path file = fs::path(LATENTLAB_FIXTURE_EXTRA_DIR) / "fixture_good_stripped.so";
  EXPECT_TRUE(registry.load_library(file)) << reason_for(registry, file);
  EXPECT_NO_THROW(registry.find("schedule", "fixture_constant"));
}

TEST(Registry, DirectoryScanLoadsTheGoodAndRecordsEveryBadOne) {
  Registry registry;
  registry.load_directory(LATENTLAB_FIXTURE_DIR, true);
  // throwing_factory and exactly one of good/duplicate (whichever sorts first) load.
  EXPECT_EQ(registry.loaded().size(), 2u);
  // no_entry, wrong_api, wrong_torch, throwing_register, crashing_init, not_a_library, and the second
  // of good/duplicate.
  EXPECT_EQ(registry.failed().size(), 7u);
  for (const auto& failure : registry.failed()) EXPECT_FALSE(failure.reason.empty()) << failure.path;
}

TEST(Registry, MissingPluginErrorSuggestsAndNamesFailedLibraries) {
  Registry registry;
  registry.load_library(fixture("fixture_good"));
  registry.load_library(fixture("fixture_wrong_api"));
  try {
    registry.find("schedule", "fixture_constnt");
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    expect_contains(message,
                    "no schedule plugin named 'fixture_constnt' (did you mean \"fixture_constant\"?)");
    expect_contains(message, "available schedule plugins: fixture_constant");
    expect_contains(message, "fixture_wrong_api.so was not loaded: incompatible SDK API version");
  }
  // Asked for where a spec puts it, the error starts with that place.
  for (const bool validate_only : {false, true}) {
    try {
      if (validate_only)
        registry.resolved_params("schedule", "fixture_constnt", nlohmann::json::object(),
                                 "denoiser.schedule.params");
      else
        registry.create<Schedule>("fixture_constnt", nlohmann::json::object(), "denoiser.schedule.params");
      FAIL() << "no exception";
    } catch (const ConfigError& e) {
      EXPECT_EQ(
          std::string(e.what()).rfind("denoiser.schedule: no schedule plugin named 'fixture_constnt'", 0), 0u)
          << e.what();
    }
  }
}

TEST(Registry, RequestForAPluginOfARejectedLibraryNamesTheReason) {
  Registry registry;
  registry.load_library(fixture("fixture_good"));
  registry.load_library(fixture("fixture_duplicate"));
  // The duplicate library's plugin is known by name; asking for it explains why it is missing.
  try {
    registry.find("schedule", "nonexistent");
    FAIL();
  } catch (const ConfigError& e) {
    // The duplicate's contents are known and do not include 'nonexistent', so it is not blamed.
    EXPECT_EQ(std::string(e.what()).find("fixture_duplicate"), std::string::npos) << e.what();
  }
  const auto notes = registry.failed_notes("schedule", "fixture_constant");
  expect_contains(notes, "fixture_duplicate.so provides it but was not loaded");
}

TEST(Registry, ParameterErrorsNameThePath) {
  Registry registry;
  registry.load_library(fixture("fixture_good"));
  try {
    registry.create<Schedule>("fixture_constant", {{"T", 1000}}, "trials[0].schedule.params");
    FAIL();
  } catch (const ConfigError& e) {
    expect_contains(e.what(),
                    "trials[0].schedule.params.T: 1000 is out of range; allowed: an integer in [1, 100]");
  }
}

TEST(Registry, MissingFolderIsRecordedOnlyWhenRequired) {
  Registry registry;
  registry.load_directory("/nonexistent/latentlab/plugins", false);
  EXPECT_TRUE(registry.failed().empty());
  registry.load_directory("/nonexistent/latentlab/plugins", true);
  ASSERT_EQ(registry.failed().size(), 1u);
  expect_contains(registry.failed()[0].reason, "does not exist");
}

TEST(Registry, EnvironmentPluginPathIsSplitOnColons) {
  ::setenv("LATENTLAB_PLUGIN_PATH", "/a::/b/c:", 1);
  const auto dirs = latentlab::registry::env_plugin_dirs();
  ::unsetenv("LATENTLAB_PLUGIN_PATH");
  EXPECT_EQ(dirs, (std::vector<fs::path>{"/a", "/b/c"}));
}
