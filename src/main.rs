//! The `ehr-mcp` binary: parses the command line and runs it.

/// mimalloc instead of glibc malloc: the server allocates many small short-lived buffers per call, and
/// glibc's allocator was about a seventh of its CPU under load (BENCHMARKS.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ehr_mcp::cli::main()
}
