// The `latentlab` host as a user runs it: output, error messages and exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "latentlab/precision.hpp"

namespace {

struct Result {
  int status = -1;
  std::string out;  // stdout and stderr together
};

Result run(const std::string& arguments, bool merge_stderr = true) {
  const std::string command =
      std::string("'") + LATENTLAB_HOST + "' " + arguments + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Result result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "missing \"" << part << "\" in:\n" << text;
}

}  // namespace

TEST(Cli, VersionNamesEverything) {
  const auto r = run("--version");
  EXPECT_EQ(r.status, 0);
  expect_contains(r.out, "LatentLab ");
  expect_contains(r.out, "LibTorch " TORCH_VERSION);
  expect_contains(r.out, "CUDA: ");
  expect_contains(r.out, "SDK API version ");
  expect_contains(r.out, "threads: ");
}

TEST(Cli, NoArgumentsAndUnknownCommandAreUsageErrors) {
  EXPECT_EQ(run("").status, 2);
  const auto r = run("plugin list");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "unknown command 'plugin' (did you mean \"plugins\"?)");
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* command : {"plugins", "schedule", "doctor", "version"}) {
    const auto r = run(std::string(command) + " --help");
    EXPECT_EQ(r.status, 0) << command;
    expect_contains(r.out, "Usage: latentlab ");
    expect_contains(r.out, "--plugin-path");
  }
}

TEST(Cli, PluginsListShowsTheSchedules) {
  const auto r = run("plugins list");
  EXPECT_EQ(r.status, 0);
  for (const char* name : {"linear", "sqrt_linear", "cosine", "custom"}) expect_contains(r.out, name);
  expect_contains(r.out, "latentlab_schedules.so");
  EXPECT_EQ(r.out.find("not loaded"), std::string::npos) << r.out;
}

TEST(Cli, PluginsListWithBadLibrariesShowsReasonsAndSurvives) {
  const auto r = run("plugins list --plugin-path " LATENTLAB_FIXTURE_DIR, false);
  EXPECT_EQ(r.status, 0);
  expect_contains(r.out, "fixture_constant");
  expect_contains(r.out, "fixture_throws");
  expect_contains(r.out, "not loaded:");
  expect_contains(r.out, "fixture_not_a_library.so");
  expect_contains(r.out, "not a shared library");
  expect_contains(r.out, "incompatible SDK API version");
  expect_contains(r.out, "does not export 'latentlab_plugin_entry'");
  expect_contains(r.out, "crashed with signal 11");
}

TEST(Cli, PluginsShowPrintsTheSchema) {
  const auto r = run("plugins show linear");
  EXPECT_EQ(r.status, 0);
  expect_contains(r.out, "schedule 'linear'");
  expect_contains(r.out, "beta_start (float, default 0.0015)");
  expect_contains(r.out, "allowed: a number in (0, 1)");
  const auto j = run("plugins show custom --format json", false);
  EXPECT_EQ(j.status, 0);
  const auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["parameters"][0]["name"], "betas");
  EXPECT_EQ(parsed["parameters"][0]["required"], true);
}

TEST(Cli, PluginsShowUnknownNameSuggests) {
  const auto r = run("plugins show cosin");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "no plugin named 'cosin' (did you mean \"cosine\"?)");
}

TEST(Cli, ScheduleCsvHasFullPrecision) {
  const auto r = run("schedule linear --format csv --set T=10", false);
  EXPECT_EQ(r.status, 0);
  expect_contains(r.out, "t,beta,alpha,sigma,log_snr\n1,0.0015,");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 11);
  // Row 10: beta_end exactly.
  expect_contains(r.out, "\n10,0.0195");
}

TEST(Cli, ScheduleJsonColumns) {
  const auto r = run("schedule cosine --format json --params '{\"T\": 20}' --every 5", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["T"], 20);
  EXPECT_EQ(j["params"]["s"], 0.008);
  EXPECT_EQ(j["t"], (nlohmann::json{1, 6, 11, 16, 20}));
  EXPECT_EQ(j["log_snr"].size(), 5u);
}

TEST(Cli, ScheduleBadParametersAreUsageErrorsWithThePath) {
  auto r = run("schedule linear --set beta_ends=0.1");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "schedule.linear.beta_ends: unknown parameter \"beta_ends\"");
  expect_contains(r.out, "did you mean \"beta_end\"?");

  r = run("schedule linear --set T=abc");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "schedule.linear.T: expected an integer, got \"abc\"");

  r = run("schedule linear --set T");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "expected key=value");

  r = run("schedule lineer");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "no schedule plugin named 'lineer' (did you mean \"linear\"?)");

  r = run("schedule linear --format xml");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "--format: expected table, csv or json");

  r = run("schedule linear --bogus-option");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "latentlab schedule --help");
}

TEST(Cli, ScheduleFromAFailedLibraryNamesTheReason) {
  const auto r = run("schedule fixture_half_registered --plugin-path " LATENTLAB_FIXTURE_DIR);
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "fixture_throwing_register.so was not loaded: its register function failed");
}

TEST(Cli, ThrowingConstructorIsAFailureNotACrash) {
  const auto r = run("schedule fixture_throws --plugin-path " LATENTLAB_FIXTURE_DIR);
  EXPECT_EQ(r.status, 1);
  expect_contains(r.out, "deliberate failure in the constructor");
}

TEST(Cli, ThreadsOptionIsApplied) {
  const auto r = run("version --threads 1");
  EXPECT_EQ(r.status, 0);
  expect_contains(r.out, "threads: 1 intra-op");
  EXPECT_EQ(run("version --threads -3").status, 2);
}

TEST(Cli, DoctorReportsEachCheck) {
  const auto r = run("doctor");
  expect_contains(r.out, "threads:");
  expect_contains(r.out, "BLAS: 512x512 float32 product at");
  expect_contains(r.out, "bf16: ");  // native or emulated, and what to do about it
  // What the quick start's "precision": "auto" runs in here.
  expect_contains(r.out, "\"precision\": \"auto\" is " +
                             latentlab::to_string(latentlab::auto_precision(torch::kCPU)) + " on the CPU");
  expect_contains(r.out, "dataset fashion-mnist");
  expect_contains(r.out, "plugins:");
  // Bad plugin libraries are reported as problems with a fix, and set the exit status.
  const auto bad = run("doctor --plugin-path " LATENTLAB_FIXTURE_DIR);
  EXPECT_EQ(bad.status, 1);
  expect_contains(bad.out, "[FAIL] plugin library ");
  expect_contains(bad.out, "fix: rebuild it against this LatentLab");
}

TEST(Cli, ScheduleCheckRunsTheConformanceChecks) {
  const auto r = run("schedule cosine --check");
  EXPECT_EQ(r.status, 0) << r.out;
  expect_contains(r.out, "[pass] Eq. 7: sigma^2_{t|s}");
  expect_contains(r.out, " checks passed, 0 failed");
  const auto j = run("schedule custom --check --set 'betas=[0.1,0.2]' --format json", false);
  ASSERT_EQ(j.status, 0) << j.out;
  EXPECT_EQ(nlohmann::json::parse(j.out)["passed"], true);
}

TEST(Cli, SetReadsBareNumbersAsNumbers) {
  const auto r = run("schedule linear --set beta_start=.001 --set T=0010 --format json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["params"]["beta_start"], 0.001);
  EXPECT_EQ(j["T"], 10);
  EXPECT_EQ(run("schedule linear --set T=1e400").status, 2);
}

TEST(Cli, OptionsBeforeTheCommandAreExplained) {
  const auto r = run("--threads 2 doctor");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.out, "options go after the command");
}

TEST(Cli, PluginsListJsonStaysCleanWhenAPluginPrintsWhileLoading) {
  const auto r = run("plugins list --format json --plugin-path " LATENTLAB_FIXTURE_DIR, false);
  ASSERT_EQ(r.status, 0);
  const auto parsed = nlohmann::json::parse(r.out);  // throws if the crashing fixture's output leaked in
  EXPECT_EQ(parsed["not_loaded"].size(), 7u);
}

TEST(Cli, SamplersCheckOneSamplerAsJson) {
  const auto r =
      run("samplers check --sampler heun --data gaussian --steps 10,20 --samples 64 --tolerance 0.05 "
          "--format json",
          false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["sampler"], "heun");
  EXPECT_TRUE(j[0]["deterministic"].get<bool>());
  EXPECT_EQ(j[0]["rows"][1]["nfe"], 39);
  EXPECT_GT(j[0]["rows"][1]["order"].get<double>(), 1.5);
  EXPECT_TRUE(j[0]["rows"][0]["order"].is_null());
  // A loose tolerance at 20 steps fails the accuracy check: exit 1.
  EXPECT_EQ(
      run("samplers check --sampler ddim --data gaussian --steps 10,20 --samples 64 --tolerance 1e-6").status,
      1);
  // Bad input: exit 2 with the fix.
  const auto bad = run("samplers check --sampler dddim");
  EXPECT_EQ(bad.status, 2);
  expect_contains(bad.out, "ddim");
  EXPECT_EQ(run("samplers check --steps 10,x").status, 2);
  EXPECT_EQ(run("samplers check --set eta=0.5").status, 2);
  EXPECT_EQ(run("samplers check --sampler ddim --data gauss").status, 2);
}

TEST(Cli, PluginsCheckRunsTheSamplerBench) {
  const auto r = run("plugins check dpmpp_2m", false);
  EXPECT_EQ(r.status, 0) << r.out;
  expect_contains(r.out, "[gaussian] accurate");
  expect_contains(r.out, "[mixture] converges");
  const auto guider = run("plugins check cfg --set scale=3", false);
  EXPECT_EQ(guider.status, 0) << guider.out;
  expect_contains(guider.out, "[pass] the same inputs give the same eps_hat");
  const auto conditioner = run("plugins check tokens --set dim=16 --set heads=2", false);
  EXPECT_EQ(conditioner.status, 0) << conditioner.out;
  expect_contains(conditioner.out, "[pass] dropped rows get one unconditional value");
}

TEST(Cli, PluginsListAsJsonAndByDefault) {
  const auto j = run("plugins --format json", false);
  ASSERT_EQ(j.status, 0) << j.out;
  const auto parsed = nlohmann::json::parse(j.out);
  std::set<std::string> names;
  for (const auto& plugin : parsed["plugins"])
    names.insert(plugin["kind"].get<std::string>() + "/" + plugin["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"autoencoder/identity",
                                          "autoencoder/kl",
                                          "autoencoder/vq",
                                          "conditioner/class",
                                          "conditioner/lowres",
                                          "conditioner/masked",
                                          "conditioner/tokens",
                                          "dataset/fashion-mnist",
                                          "dataset/image-folder",
                                          "features/classifier",
                                          "features/inception-v3-fid",
                                          "guider/cfg",
                                          "guider/none",
                                          "guider/posthoc",
                                          "sampler/ddim",
                                          "sampler/ddpm",
                                          "sampler/dpmpp_2m",
                                          "sampler/euler",
                                          "sampler/euler_ancestral",
                                          "sampler/heun",
                                          "sampler/plms",
                                          "schedule/cosine",
                                          "schedule/custom",
                                          "schedule/linear",
                                          "schedule/sqrt_linear",
                                          "weighting/elbo",
                                          "weighting/min_snr",
                                          "weighting/unweighted",
                                          "weighting/x0"}));
  EXPECT_TRUE(parsed["not_loaded"].empty());
  EXPECT_EQ(run("plugins list linear").status, 2);
}
