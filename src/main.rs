//! The `sinkmap` command line: parse, dispatch to one function per subcommand (src/cli/), map
//! the error to its exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`sinkmap … | head`), as command-line tools do.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    sinkmap::progress::set_json(cli.progress_json);
    // GDAL prints its own warnings to stderr; keep them, but our errors carry the context.
    // Warnings the library returns are printed by the subcommands as they arrive.
    let result = match cli.command {
        Command::Run(a) => cli::run::cmd_run(a),
        Command::Zonal(a) => cli::run::cmd_zonal(a),
        Command::Init(a) => cli::init::cmd_init(a),
        Command::Synth(a) => cli::synth::cmd_synth(a),
        Command::Balance(a) => cli::balance::cmd_balance(a),
        Command::Report(a) => cli::report::cmd_report(a),
        Command::Change(a) => cli::change::cmd_change(a),
        Command::Series(a) => cli::series::cmd_series(a),
        Command::Project(a) => cli::project::cmd_project(a),
        Command::Fit(a) => cli::fit::cmd_fit(a),
        Command::Merge(a) => cli::merge::cmd_merge(a),
        Command::Bench(a) => cli::bench::cmd_bench(a),
        Command::Assess(a) => sinkmap::assess::cli::assess(a),
        Command::Sample(a) => sinkmap::assess::cli::sample(a),
        Command::Calibrate(a) => sinkmap::assess::cli::calibrate(a),
    };
    sinkmap::progress::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let fault = e.fault();
            eprintln!("error: {e}");
            eprintln!(
                "  ({} error; exit code {})",
                fault.name(),
                fault.exit_code()
            );
            ExitCode::from(fault.exit_code())
        }
    }
}
