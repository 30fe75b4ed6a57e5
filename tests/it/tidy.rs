//! Tidy: the layers of `docs/ARCHITECTURE.md` hold in the source. Fails on an import that points up or
//! around a layer (`crate::…` paths and external crates a layer must not name) and on a Rust module that
//! does not open with a `//!` doc line. There are no exceptions: a layer that needs something from
//! another asks a layer below it, or the type moves down (see docs/ARCHITECTURE.md).

use std::path::{Path, PathBuf};

/// Per top-level module: the `crate::` modules and the external crates it must not name.
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "domain",
        &[
            "store",
            "auth",
            "audit",
            "tools",
            "transport",
            "cli",
            "app",
            "dataset",
            "telemetry",
            "config",
        ],
        &["sqlx", "rusqlite", "axum", "rmcp", "http", "tokio", "clap"],
    ),
    (
        "store",
        &[
            "auth",
            "audit",
            "tools",
            "transport",
            "cli",
            "app",
            "dataset",
        ],
        &["axum", "rmcp", "http", "clap"],
    ),
    (
        "auth",
        &["tools", "transport", "cli", "app", "config", "audit"],
        &["axum", "rmcp", "http", "clap", "sqlx", "rusqlite"],
    ),
    (
        "audit",
        &["auth", "tools", "transport", "cli", "app", "dataset"],
        &["axum", "rmcp", "http", "clap", "sqlx", "rusqlite"],
    ),
    (
        "tools",
        &["transport", "cli", "app", "config"],
        &["axum", "sqlx", "rusqlite", "http", "clap"],
    ),
    ("transport", &["cli", "app"], &["clap", "sqlx", "rusqlite"]),
    (
        "fhir",
        &["auth", "audit", "tools", "transport", "cli", "app"],
        &["axum", "rmcp", "http", "sqlx", "rusqlite", "tokio", "clap"],
    ),
    (
        "dataset",
        &["auth", "tools", "transport", "cli", "app"],
        &["axum", "rmcp", "http", "sqlx", "rusqlite"],
    ),
    (
        "telemetry",
        &["auth", "audit", "store", "tools", "transport", "cli", "app"],
        &["rmcp", "sqlx", "rusqlite"],
    ),
];

/// `crate::store::<row module>` from the transport layer: it may hold the `Store` handle (health, metrics)
/// but not the store's row types.
const TRANSPORT_STORE_ALLOWED: &[&str] = &["Store", "StoreError"];

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without its comment lines (docs may name other layers).
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` path in `code`, as its segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (index, _) in code.match_indices("crate::") {
        let before = code[..index].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[index + "crate::".len()..];
        let segments: Vec<String> = rest
            .split("::")
            .map(|segment| {
                segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|segment| !segment.is_empty())
            .take(2)
            .collect();
        paths.push(segments);
    }
    paths
}

fn names_external(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(index, _)| {
        let before = code[..index].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

fn problems() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let relative = path
            .strip_prefix(&root)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        problems.extend(problems_of(&relative, &text));
    }
    problems
}

/// What is wrong with the file at `relative` (`src/…`) whose text is `text`.
fn problems_of(relative: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text.lines().find(|line| !line.trim().is_empty());
    if !first.is_some_and(|line| line.starts_with("//!")) {
        problems.push(format!("{relative}: does not open with a `//!` doc line"));
    }
    let layer = relative
        .trim_start_matches("src/")
        .split(['/', '.'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let Some((_, forbidden_modules, forbidden_crates)) =
        RULES.iter().find(|(name, _, _)| *name == layer)
    else {
        return problems;
    };
    let code = code_of(text);
    for segments in crate_paths(&code) {
        let Some(module) = segments.first() else {
            continue;
        };
        let name = format!("crate::{module}");
        if forbidden_modules.contains(&module.as_str()) {
            problems.push(format!("{relative}: layer `{layer}` must not use {name}"));
        }
        if layer == "transport" && module == "store" {
            if let Some(item) = segments.get(1) {
                if !TRANSPORT_STORE_ALLOWED.contains(&item.as_str()) {
                    problems.push(format!(
                        "{relative}: transport must not use the store's row types (crate::store::{item})"
                    ));
                }
            }
        }
    }
    for name in *forbidden_crates {
        if names_external(&code, name) {
            problems.push(format!("{relative}: layer `{layer}` must not use `{name}`"));
        }
    }
    problems
}

#[test]
fn layers_hold_and_every_module_has_a_doc_line() {
    let problems = problems();
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_forbidden_import() {
    let code = code_of("//! x\nuse crate::transport::AppState;\nfn f() { sqlx::query(\"\"); }\n");
    assert_eq!(crate_paths(&code), vec![vec!["transport", "AppState"]]);
    assert!(names_external(&code, "sqlx"));
    assert!(!names_external("use rsqlx::x;", "sqlx"));
}

#[test]
fn every_former_exception_would_fail_again() {
    for (file, code) in [
        ("src/auth/issuance.rs", "use crate::audit::AuditLog;"),
        (
            "src/auth/error.rs",
            "impl From<crate::audit::AuditError> for X {}",
        ),
        (
            "src/transport/oauth.rs",
            "use crate::store::clients::ClientRecord;",
        ),
        ("src/tools/session.rs", "fn f(p: &http::request::Parts) {}"),
    ] {
        let text = format!("//! doc\n{code}\n");
        assert_eq!(problems_of(file, &text).len(), 1, "{file}: {code}");
    }
    assert!(
        problems_of(
            "src/transport/health.rs",
            "//! doc\nuse crate::store::Store;\n"
        )
        .is_empty()
    );
    assert_eq!(problems_of("src/tools/x.rs", "no doc line\n").len(), 1);
}
