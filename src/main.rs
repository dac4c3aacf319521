//! The `glue-auth` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc, built without transparent huge pages: measured in
/// `docs/design/hot-paths.md` §1.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    glue_auth::cli::run(glue_auth::cli::Cli::parse())
}
