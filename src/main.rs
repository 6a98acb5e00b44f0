use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = outpost::cli::Cli::parse();
    match outpost::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("outpost: {err:#}");
            ExitCode::FAILURE
        }
    }
}
