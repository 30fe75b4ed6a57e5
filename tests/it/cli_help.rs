//! `--help`: every command and option has a description, and the global options (every command's) stand
//! under their own heading, apart from the command's own — checked on clap's command tree and on the
//! real binary's output for every subcommand.

use clap::CommandFactory;
use ehr_mcp::cli::Cli;

const GLOBAL_HEADING: &str = "Global options (every command)";

/// Every subcommand as its path of names (`["client", "api-key", "create"]`), the root first.
fn command_paths(command: &clap::Command, path: Vec<String>, into: &mut Vec<Vec<String>>) {
    into.push(path.clone());
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let mut next = path.clone();
        next.push(sub.get_name().to_owned());
        command_paths(sub, next, into);
    }
}

fn find<'a>(root: &'a clap::Command, path: &[String]) -> &'a clap::Command {
    path.iter().fold(root, |command, name| {
        command
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("no subcommand {name}"))
    })
}

#[test]
fn every_command_and_option_has_a_description_and_globals_have_their_heading() {
    let mut root = Cli::command();
    root.build();
    let mut paths = Vec::new();
    command_paths(&root, Vec::new(), &mut paths);
    assert!(paths.len() > 20, "walked {} commands", paths.len());
    let mut missing = Vec::new();
    for path in &paths {
        let command = find(&root, path);
        let name = format!("ehr-mcp {}", path.join(" "));
        let about = command
            .get_about()
            .map(|about| about.to_string())
            .unwrap_or_default();
        if about.trim().is_empty() {
            missing.push(format!("{name}: no description"));
        }
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg
                .get_help()
                .or_else(|| arg.get_long_help())
                .map(|help| help.to_string())
                .unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("{name} {id}: no help text"));
            }
            let heading = arg.get_help_heading();
            if arg.is_global_set() {
                if heading != Some(GLOBAL_HEADING) {
                    missing.push(format!("{name} {id}: global but under {heading:?}"));
                }
            } else if heading == Some(GLOBAL_HEADING) {
                missing.push(format!(
                    "{name} {id}: not global but under the global heading"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The option names listed under each heading of a `--help` text.
fn options_by_heading(help: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if let Some(heading) = line.strip_suffix(':').filter(|h| !h.starts_with(' ')) {
            sections.push((heading.to_owned(), Vec::new()));
        } else if let Some(option) = line
            .trim_start()
            .split([' ', ','])
            .find(|word| word.starts_with("--"))
            .filter(|_| line.starts_with("  "))
            && let Some((_, options)) = sections.last_mut()
        {
            options.push(option.to_owned());
        }
    }
    sections
}

#[test]
fn every_subcommand_help_of_the_binary_separates_global_options() {
    let mut root = Cli::command();
    root.build();
    let globals: Vec<String> = root
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    assert!(
        globals.contains(&"--database-url".to_owned()),
        "{globals:?}"
    );
    let mut paths = Vec::new();
    command_paths(&root, Vec::new(), &mut paths);
    for path in &paths {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
            .args(path)
            .arg("--help")
            .output()
            .expect("run ehr-mcp --help");
        let name = format!("ehr-mcp {} --help", path.join(" "));
        assert!(output.status.success(), "{name}: {:?}", output.status);
        let help = String::from_utf8_lossy(&output.stdout);
        let sections = options_by_heading(&help);
        let global_section = sections
            .iter()
            .find(|(heading, _)| heading == GLOBAL_HEADING)
            .unwrap_or_else(|| panic!("{name}: no {GLOBAL_HEADING:?} heading:\n{help}"));
        for global in &globals {
            assert!(
                global_section.1.contains(global),
                "{name}: {global} not under {GLOBAL_HEADING:?}:\n{help}"
            );
        }
        for (heading, options) in &sections {
            if heading != GLOBAL_HEADING {
                let misplaced: Vec<_> = options.iter().filter(|o| globals.contains(o)).collect();
                assert!(
                    misplaced.is_empty(),
                    "{name}: global {misplaced:?} under {heading:?}:\n{help}"
                );
            }
        }
    }
}
