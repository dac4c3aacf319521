//! The `glue-auth` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc (issue 6). malloc and free took 8-11% of the CPU in
/// the benchmark's profiles, and glibc kept an arena per allocating thread (async workers,
/// SQLite connection threads, password checks). Measured in alternating runs of both builds
/// on SQLite: refresh +12-23%, company-user tokens +12-41%, `/company-users/mine` +9-19%, at
/// a similar peak RSS. Built without transparent huge pages (`no_thp`): with them, mimalloc's
/// 2 MiB pages added up to 37 MiB to the peak RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    glue_auth::cli::run(glue_auth::cli::Cli::parse())
}
