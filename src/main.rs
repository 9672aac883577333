//! The `servio` binary: a thin shell over the library (see `servio::cli`).

/// mimalloc: the gateway and the services allocate small, short-lived buffers per request,
/// where glibc malloc showed up across the profile (scripts/bench-gateway, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    servio::process::limits::decline_huge_pages();
    servio::cli::main()
}
