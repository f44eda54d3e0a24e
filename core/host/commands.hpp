#pragma once
// The host's subcommands. Each takes the arguments after its name and returns an exit status.
#include <string>
#include <vector>

namespace latentlab::host {

using Args = std::vector<std::string>;

int run_version(const Args& args);
int run_plugins(const Args& args);
int run_schedule(const Args& args);
int run_doctor(const Args& args);
int run_train_denoiser(const Args& args);
int run_bench(const Args& args);
int run_bench_metrics(const Args& args);  // `bench features`, `bench fid`
int run_bench_sweep(const Args& args);    // `bench sweep`
int run_bench_peak(const Args& args);     // `bench peak`
int run_samplers(const Args& args);
int run_sample(const Args& args);
int run_train_autoencoder(const Args& args);
int run_reconstruct(const Args& args);
int run_import_weights(const Args& args);
int run_fid(const Args& args);
int run_run(const Args& args);
int run_status(const Args& args);
int run_table(const Args& args);  // analysis: docs/analysis.md
int run_plot(const Args& args);
int run_report(const Args& args);
int run_stage_worker(const Args& args);  // `stage-run`: a sweep worker (not listed)

// `latentlab --version` text.
void print_version();

}  // namespace latentlab::host
