use std::process::ExitCode;

use clap::Parser as _;

/// Errors are printed as one line of causes (`adloop-sim: …: …`), never with a backtrace: they describe the
/// user's input (a scenario, a setting, a policy), not a bug.
fn main() -> ExitCode {
    let cli = adloop_sim::Cli::parse();
    match adloop_sim::execute(cli) {
        Ok(results_table) => {
            print!("{results_table}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("adloop-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}
