//! `permitsync`: the command-line program. The library does the work; the
//! command line lives in the binary-only `cli` module.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
