//! The `burst` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    burst_master::cli::main()
}
