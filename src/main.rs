//! The `glue-auth` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    glue_auth::cli::run(glue_auth::cli::Cli::parse())
}
