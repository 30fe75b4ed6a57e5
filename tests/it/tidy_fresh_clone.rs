//! Tidy (issue #11): the suite runs on a fresh clone with nothing beside it. The repository is cloned
//! (`git clone`, local and quick, no build) into a temp dir that has no `../shared` next to it, and in the
//! clone — exactly what a new user gets — no source, test, script, bench or CI file names a path outside
//! the repository (`../shared`, a machine's absolute path, a `join("..")` above the manifest directory),
//! and every fixture a test reads (`tests/fixtures/…`, `include_str!`, `fixture("…")`) is there. The whole
//! suite on such a clone is one line, documented in README.md (Tests): `git clone . /tmp/ehr-mcp-fresh &&
//! cd /tmp/ehr-mcp-fresh && scripts/test`.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// What no file of a clone may contain (docs may describe the workplace; code may not depend on it).
const OUTSIDE: &[&str] = &[
    "../shared",
    "shared/seed-data",
    "/work/",
    "/home/",
    "/Users/",
    "/root/",
    "join(\"..",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|error| format!("git: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Files checked for paths outside the repository: code, tests, scripts, CI, packaging (not Markdown).
fn is_checked(path: &str) -> bool {
    let code = [
        "src/",
        "tests/",
        "scripts/",
        ".ci/",
        "bench/",
        "examples/",
        "deploy/",
        "migrations/",
    ];
    let at_top = ["Cargo.toml", "Dockerfile", "build.rs"];
    (code.iter().any(|dir| path.starts_with(dir)) || at_top.contains(&path))
        && !path.ends_with(".md")
        && !path.starts_with("tests/fixtures/")
        // This file names the patterns it looks for.
        && path != "tests/it/tidy_fresh_clone.rs"
}

/// The lines of `text` naming a path outside the repository.
fn outside_paths(name: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| OUTSIDE.iter().any(|pattern| line.contains(pattern)))
        .map(|(index, line)| format!("{name}:{}: {}", index + 1, line.trim()))
        .collect()
}

/// `a/b/../c` as `a/c`; `None` when it climbs above the start.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// The fixture files a test source names, as repository paths: `tests/fixtures/x` (also after
/// `CARGO_MANIFEST_DIR`), `include_str!("../fixtures/x")` relative to the file, and `fixture("x")`.
fn fixtures_named(file: &str, text: &str) -> Vec<Result<String, String>> {
    let mut named = Vec::new();
    let literals: Vec<&str> = text.split('"').skip(1).step_by(2).collect();
    for literal in &literals {
        if let Some(at) = literal.find("tests/fixtures/") {
            named.push(Ok(literal[at..].to_owned()));
        } else if literal.starts_with("../") && literal.contains("fixtures/") {
            let base = Path::new(file).parent().unwrap_or(Path::new(""));
            named.push(
                normalise(&base.join(literal))
                    .map(|path| path.display().to_string())
                    .ok_or_else(|| format!("{file}: {literal:?} climbs out of the repository")),
            );
        }
    }
    for (at, _) in text.match_indices("fixture(\"") {
        let rest = &text[at + "fixture(\"".len()..];
        if let Some(end) = rest.find('"') {
            named.push(Ok(format!("tests/fixtures/{}", &rest[..end])));
        }
    }
    named
}

#[test]
fn a_fresh_clone_has_every_fixture_the_tests_read_and_nothing_reaches_outside_it() {
    if git(&repo(), &["rev-parse", "--git-dir"]).is_err() {
        eprintln!(
            "not a git checkout (a source archive): nothing to clone; the pattern check runs below"
        );
    }
    let parent = tempfile::tempdir().unwrap();
    let clone = parent.path().join("ehr-mcp");
    let cloned = git(
        parent.path(),
        &[
            "clone",
            "--quiet",
            "--no-local",
            "--depth",
            "1",
            &format!("file://{}", repo().display()),
            "ehr-mcp",
        ],
    );
    let root = match cloned {
        Ok(_) => clone.clone(),
        Err(error) => {
            eprintln!("cannot clone ({error}); checking the working tree instead");
            repo()
        }
    };
    assert!(
        !root.join("../shared").exists() || root == repo(),
        "the clone has nothing beside it"
    );
    let files: Vec<String> = if root == repo() {
        git(&root, &["ls-files"])
            .map(|list| list.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    } else {
        git(&root, &["ls-files"])
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert!(
        files.iter().any(|f| f == "Cargo.toml"),
        "the clone holds the repository: {files:?}"
    );
    let mut problems = Vec::new();
    let mut fixtures = Vec::new();
    for file in files.iter().filter(|file| is_checked(file)) {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue; // binary
        };
        problems.extend(outside_paths(file, &text));
        if file.starts_with("tests/") && file.ends_with(".rs") {
            fixtures.extend(fixtures_named(file, &text));
        }
    }
    assert!(
        fixtures.len() >= 3,
        "the tests name their fixtures: {fixtures:?}"
    );
    for fixture in fixtures {
        match fixture {
            Ok(path) if root.join(&path).is_file() => {}
            Ok(path) => problems.push(format!(
                "{path} is read by a test but is not in a fresh clone (untracked or ignored?)"
            )),
            Err(error) => problems.push(error),
        }
    }
    // What the fixtures directory holds locally is committed: a fresh clone has the same files.
    let local: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    for name in local {
        if !root.join("tests/fixtures").join(&name).exists() {
            problems.push(format!(
                "tests/fixtures/{name} exists here but not in a fresh clone"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "a fresh clone would not pass:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_clone_checker_sees_outside_paths_and_resolves_fixture_names() {
    assert_eq!(
        outside_paths(
            "t.rs",
            "let a = 1;\nread(\"../shared/seed-data/x.json\");\n"
        )
        .len(),
        1
    );
    assert!(outside_paths("t.rs", "join(\"tests/fixtures/x.json\")").is_empty());
    let named = fixtures_named(
        "tests/it/a.rs",
        "include_str!(\"../fixtures/a.json\"); join(\"tests/fixtures/b.json\"); fixture(\"c.json\"); \"../../../x/fixtures/d\"",
    );
    assert_eq!(named[0], Ok("tests/fixtures/a.json".to_owned()));
    assert_eq!(named[1], Ok("tests/fixtures/b.json".to_owned()));
    assert!(named[2].is_err(), "{named:?}");
    assert_eq!(named[3], Ok("tests/fixtures/c.json".to_owned()));
    assert!(!is_checked("docs/STORAGE.md") && is_checked(".ci/run") && is_checked("src/main.rs"));
}
