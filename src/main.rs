//! The `ehr-mcp` binary: parses the command line and runs it.

fn main() -> std::process::ExitCode {
    ehr_mcp::cli::main()
}
