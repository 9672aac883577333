//! The `servio` binary: a thin shell over the library (see `servio::cli`).

fn main() -> std::process::ExitCode {
    servio::cli::main()
}
