//! Docs that run: every fenced block of README.md and docs/*.md is executed as printed, in file order
//! (README.md first, then docs/ alphabetically), in one temp dir, so later blocks see what earlier ones
//! made (the database, `oauth_clients_credentials.json`, the server they started).
//!
//! - `sh`/`bash`: run with `bash -e -o pipefail` in the temp dir, the debug binary's directory first on
//!   `PATH` (so `ehr-mcp` resolves as after `cargo install --path .`). A block marked
//!   `<!-- doc-test: background -->` is started in the background and must make `127.0.0.1:7777/healthz`
//!   answer (the README's `ehr-mcp serve --demo`); it is stopped at the end.
//! - `json`: parsed; an MCP client config (`mcpServers`/`servers`) has each stdio server launched with its
//!   command, args and env (VS Code's `${workspaceFolder}` is the temp dir, `${input:…}` is answered from
//!   `oauth_clients_credentials.json` or the token endpoint, as a user would) and an MCP `initialize` +
//!   `tools/list` exchanged; a `"type": "http"` server is checked against the server's protected-resource
//!   metadata and gets the same exchange over Streamable HTTP.
//! - `js`: run with node, the SDK from `tests/clients/node_modules`; `python`: run with the tests' venv.
//! - `console`: a transcript. Each `$ ` line is a command (a trailing `\` continues it), run in order in one
//!   `bash -e -o pipefail` as for `sh`; the lines below a command are what it printed, and the command's real
//!   output must have their shape: a JSON answer the same keys (recursively) and the same values, where
//!   numbers, strings with `…` and what varies between runs (digits; ids, keys and hashes of 20 or more
//!   characters) only need the same type or form; other lines must appear in order, compared the same
//!   way (case-insensitively, `…` matching anything).
//! - `text` and unlabelled blocks are output: listed, not run.
//! - `<!-- doc-test: skip (reason) -->` right above a block skips it; the reason is required.
//!
//! Any other language needs the skip marker. The test prints what it ran and skipped; a failure names the
//! file, the line and the block, with the block's output.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The documented port of `ehr-mcp serve`.
const PORT: u16 = 7777;
const BASE: &str = "http://127.0.0.1:7777";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Skip(String),
    Background,
}

/// One fenced block: where it is, its language, its text and the marker above it.
#[derive(Debug, Clone)]
struct Block {
    file: String,
    line: usize,
    language: String,
    text: String,
    marker: Marker,
}

impl Block {
    fn place(&self) -> String {
        format!("{}:{} ({})", self.file, self.line, self.language_label())
    }

    fn language_label(&self) -> &str {
        if self.language.is_empty() {
            "unlabelled"
        } else {
            &self.language
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documentation files in the order their blocks run.
fn doc_files() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    let mut files = vec![repo().join("README.md")];
    files.extend(docs);
    files
}

/// The fenced blocks of one Markdown file. A marker is the last non-blank line before the fence.
fn blocks_of(name: &str, text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim_start();
        let Some(info) = line.strip_prefix("```") else {
            index += 1;
            continue;
        };
        let fence_indent = lines[index].len() - line.len();
        let language = info.split_whitespace().next().unwrap_or("").to_owned();
        let marker_line = lines[..index]
            .iter()
            .rev()
            .find(|line| !line.trim().is_empty())
            .map(|line| line.trim())
            .unwrap_or_default();
        let marker =
            parse_marker(marker_line).map_err(|error| format!("{name}:{}: {error}", index + 1))?;
        let start = index;
        let mut body = Vec::new();
        index += 1;
        while index < lines.len() && !lines[index].trim_start().starts_with("```") {
            let raw = lines[index];
            body.push(
                raw.get(fence_indent.min(raw.len() - raw.trim_start().len())..)
                    .unwrap_or(raw),
            );
            index += 1;
        }
        if index == lines.len() {
            return Err(format!("{name}:{}: the block is never closed", start + 1));
        }
        index += 1;
        blocks.push(Block {
            file: name.to_owned(),
            line: start + 1,
            language,
            text: body.join("\n") + "\n",
            marker,
        });
    }
    Ok(blocks)
}

fn parse_marker(line: &str) -> Result<Marker, String> {
    let Some(rest) = line
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
        .map(str::trim)
        .and_then(|rest| rest.strip_prefix("doc-test:"))
        .map(str::trim)
    else {
        return Ok(Marker::None);
    };
    if rest == "background" {
        return Ok(Marker::Background);
    }
    let reason = rest
        .strip_prefix("skip")
        .map(str::trim)
        .and_then(|rest| rest.strip_prefix('('))
        .and_then(|rest| rest.strip_suffix(')'))
        .map(str::trim)
        .unwrap_or_default();
    if reason.is_empty() {
        Err(format!(
            "bad marker {line:?}: write `<!-- doc-test: skip (why it cannot run here) -->` or \
             `<!-- doc-test: background -->`"
        ))
    } else {
        Ok(Marker::Skip(reason.to_owned()))
    }
}

/// The workspace of one run: the temp dir, the environment of every block, background processes.
struct Workspace {
    dir: tempfile::TempDir,
    path_var: String,
    background: Vec<Child>,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for child in &mut self.background {
            // Each background block runs in its own process group: stop the group (the shell and ehr-mcp).
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{}", child.id())])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Workspace {
    fn new() -> Workspace {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_ehr-mcp"));
        let bin_dir = binary.parent().expect("binary dir").display().to_string();
        let path_var = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
        let dir = tempfile::tempdir().expect("temp dir");
        let node_modules = repo().join("tests/clients/node_modules");
        if node_modules.exists() {
            std::os::unix::fs::symlink(&node_modules, dir.path().join("node_modules"))
                .expect("link node_modules");
        }
        Workspace {
            dir,
            path_var,
            background: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.path())
            .env("PATH", &self.path_var)
            .env_remove("DATABASE_URL")
            .env_remove("SERVER_PORT")
            .env_remove("SERVER_HOST")
            .env_remove("EHR_MCP_PUBLIC_URL")
            .env_remove("EHR_MCP_URL")
            .env_remove("RUST_LOG")
            .env_remove("LOG_LEVEL")
            .stdin(Stdio::null());
        command
    }

    /// Where `program` resolves on the blocks' `PATH`.
    fn which(&self, program: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path_var)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    }

    fn credentials(&self) -> Result<Vec<Value>, String> {
        let path = self.path().join("oauth_clients_credentials.json");
        let text = std::fs::read_to_string(&path).map_err(|error| {
            format!("no oauth_clients_credentials.json (has a block run `ehr-mcp serve --demo`?): {error}")
        })?;
        serde_json::from_str(&text).map_err(|error| format!("credentials file: {error}"))
    }

    fn secret_of(&self, client_id: &str) -> Result<String, String> {
        self.credentials()?
            .iter()
            .find(|entry| entry["client_id"] == client_id)
            .and_then(|entry| entry["client_secret"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("no client {client_id:?} in oauth_clients_credentials.json"))
    }
}

/// Runs a process to its end within `limit`, returning its combined output or a failure description.
fn run_to_end(mut command: Command, limit: Duration) -> Result<String, String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command
        .spawn()
        .map_err(|error| format!("cannot start: {error}"))?;
    let id = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(limit) {
        Ok(output) => output.map_err(|error| error.to_string())?,
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            return Err(format!("did not finish within {} s", limit.as_secs()));
        }
    };
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("exited with {}\n{text}", output.status))
    }
}

fn healthz_answers() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], PORT)),
        Duration::from_millis(200),
    )
    .is_ok_and(|mut stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut head = [0u8; 16];
        stream.write_all(request.as_bytes()).is_ok()
            && std::io::Read::read(&mut stream, &mut head)
                .is_ok_and(|n| head[..n].starts_with(b"HTTP/1.1 200"))
    })
}

fn run_shell(workspace: &mut Workspace, block: &Block) -> Result<String, String> {
    let script = workspace.path().join(format!("block-{}.sh", block.line));
    std::fs::write(&script, &block.text).map_err(|error| error.to_string())?;
    let mut command = workspace.command("bash");
    command.args(["-e", "-o", "pipefail"]).arg(&script);
    if block.marker != Marker::Background {
        return run_to_end(command, Duration::from_secs(300));
    }
    if healthz_answers() {
        return Err(format!(
            "port {PORT} already answers /healthz before this block ran: stop the server using it (the \
             docs test needs the documented port)"
        ));
    }
    let log_path = workspace.path().join(format!("block-{}.log", block.line));
    let log = std::fs::File::create(&log_path).map_err(|error| error.to_string())?;
    command
        .stdout(log.try_clone().map_err(|error| error.to_string())?)
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start: {error}"))?;
    let started = Instant::now();
    loop {
        if healthz_answers() {
            workspace.background.push(child);
            return Ok(std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the background block exited ({status}) before {BASE}/healthz answered:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err(format!(
                "{BASE}/healthz did not answer within 120 s:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_program(
    workspace: &Workspace,
    block: &Block,
    interpreter: &Path,
    extension: &str,
) -> Result<String, String> {
    if !interpreter.exists() {
        return Err(format!(
            "{} is missing: run tests/clients/setup.sh (scripts/test and .ci/run do)",
            interpreter.display()
        ));
    }
    let script = workspace
        .path()
        .join(format!("block-{}.{extension}", block.line));
    std::fs::write(&script, &block.text).map_err(|error| error.to_string())?;
    let mut command = workspace.command(interpreter);
    command.arg(&script);
    run_to_end(command, Duration::from_secs(180))
}

/// Replaces VS Code's variables and the documented placeholders the way a user fills them in.
fn fill_in(
    workspace: &Workspace,
    value: &str,
    inputs: &[Value],
    env: &Value,
) -> Result<String, String> {
    let mut text = value.replace(
        "${workspaceFolder}",
        &workspace.path().display().to_string(),
    );
    while let Some(start) = text.find("${input:") {
        let end = text[start..]
            .find('}')
            .map(|end| start + end)
            .ok_or("unterminated ${input:…}")?;
        let id = &text[start + "${input:".len()..end];
        let input = inputs
            .iter()
            .find(|input| input["id"] == id)
            .ok_or_else(|| format!("${{input:{id}}} is used but not declared in \"inputs\""))?;
        let description = input["description"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let answer = if description.contains("secret") {
            let client = workspace
                .credentials()?
                .iter()
                .filter_map(|entry| entry["client_id"].as_str().map(str::to_owned))
                .find(|client| description.contains(client))
                .ok_or_else(|| format!("input {id:?}: its description names no demo client"))?;
            workspace.secret_of(&client)?
        } else if description.contains("token") {
            access_token(&workspace.secret_of("copilot-studio")?)?
        } else {
            return Err(format!(
                "input {id:?}: cannot tell what to answer from {description:?}"
            ));
        };
        text.replace_range(start..=end, &answer);
    }
    // Claude Desktop's placeholders, replaced as docs/CLIENTS.md says: `command -v ehr-mcp` and the absolute
    // path of the database `serve --demo` created.
    while let Some(start) = text.find("/ABSOLUTE/PATH/TO/") {
        let rest = &text[start + "/ABSOLUTE/PATH/TO/".len()..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_owned();
        let replacement = if name == "ehr-mcp" {
            workspace.which("ehr-mcp").ok_or("ehr-mcp is not on PATH")?
        } else {
            workspace.path().join(&name)
        };
        text.replace_range(
            start..start + "/ABSOLUTE/PATH/TO/".len() + name_len,
            &replacement.display().to_string(),
        );
    }
    if text.contains("<secret from oauth_clients_credentials.json>") {
        let client = env["EHR_MCP_CLIENT_ID"]
            .as_str()
            .unwrap_or("copilot-studio");
        text = text.replace(
            "<secret from oauth_clients_credentials.json>",
            &workspace.secret_of(client)?,
        );
    }
    Ok(text)
}

fn access_token(secret: &str) -> Result<String, String> {
    let output = Command::new("curl")
        .args([
            "-s",
            "-u",
            &format!("copilot-studio:{secret}"),
            "-d",
            "grant_type=client_credentials",
        ])
        .arg(format!("{BASE}/oauth/token"))
        .output()
        .map_err(|error| format!("curl: {error}"))?;
    let body: Value =
        serde_json::from_slice(&output.stdout).map_err(|error| format!("token: {error}"))?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access token: {body}"))
}

/// Launches a stdio MCP server config and exchanges `initialize` + `tools/list`.
fn exchange_over_stdio(
    workspace: &Workspace,
    server: &Value,
    inputs: &[Value],
) -> Result<String, String> {
    let env = server.get("env").cloned().unwrap_or(json!({}));
    let program = fill_in(
        workspace,
        server["command"].as_str().ok_or("no \"command\"")?,
        inputs,
        &env,
    )?;
    let mut command = workspace.command(&program);
    for arg in server
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        command.arg(fill_in(
            workspace,
            arg.as_str().ok_or("an arg is not a string")?,
            inputs,
            &env,
        )?);
    }
    for (name, value) in env.as_object().into_iter().flatten() {
        command.env(
            name,
            fill_in(workspace, value.as_str().unwrap_or_default(), inputs, &env)?,
        );
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start {program:?} (is it on PATH?): {error}"))?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let stdout = child.stdout.take().ok_or("stdout")?;
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
               "capabilities": {}, "clientInfo": {"name": "docs-test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ];
    for message in messages {
        let _ = writeln!(stdin, "{message}");
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut answer = Err("no tools/list answer within 60 s".to_owned());
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = receiver.recv_timeout(left) else {
            break;
        };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            answer = Err(format!(
                "stdout carried a line that is not JSON-RPC: {line}"
            ));
            break;
        };
        if message["id"] == 2 {
            let tools = message["result"]["tools"].as_array().map_or(0, Vec::len);
            answer = if tools > 0 {
                Ok(format!(
                    "stdio server {program:?}: initialize + tools/list, {tools} tools"
                ))
            } else {
                Err(format!("tools/list answered without tools: {message}"))
            };
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let output = child
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    answer.map_err(|error| {
        format!(
            "{error}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Checks a `"type": "http"` server against the server's metadata and exchanges `initialize` + `tools/list`.
fn exchange_over_http(
    workspace: &Workspace,
    server: &Value,
    inputs: &[Value],
) -> Result<String, String> {
    let url = server["url"].as_str().ok_or("no \"url\"")?;
    let metadata = curl_json(&[
        "-s",
        &format!("{BASE}/.well-known/oauth-protected-resource/mcp"),
    ])?;
    if metadata["resource"] != url {
        return Err(format!(
            "url {url:?} is not the server's MCP resource {} (/.well-known/oauth-protected-resource/mcp)",
            metadata["resource"]
        ));
    }
    if server.get("headers").is_none() {
        // No credentials in the config: the client signs in through the browser. Check the part a test can
        // see: the 401 pointing at the protected-resource metadata, where that flow starts.
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST", url])
            .output()
            .map_err(|error| format!("curl: {error}"))?;
        let head = String::from_utf8_lossy(&output.stdout);
        return if head.starts_with("HTTP/1.1 401") && head.contains("resource_metadata=") {
            Ok(format!(
                "http server {url}: matches the resource metadata; 401 starts sign-in"
            ))
        } else {
            Err(format!(
                "expected a 401 with resource_metadata from {url}, got:\n{head}"
            ))
        };
    }
    let mut args = vec![
        "-s".to_owned(),
        "-H".to_owned(),
        "Content-Type: application/json".to_owned(),
        "-H".to_owned(),
        "Accept: application/json, text/event-stream".to_owned(),
        "-H".to_owned(),
        "MCP-Protocol-Version: 2025-06-18".to_owned(),
    ];
    for (name, value) in server
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        args.push("-H".to_owned());
        args.push(format!(
            "{name}: {}",
            fill_in(
                workspace,
                value.as_str().unwrap_or_default(),
                inputs,
                &json!({})
            )?
        ));
    }
    args.push("-d".to_owned());
    args.push(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string());
    args.push(url.to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let answer = curl_json(&refs)?;
    let tools = answer["result"]["tools"].as_array().map_or(0, Vec::len);
    if tools == 0 {
        return Err(format!("tools/list over {url} answered {answer}"));
    }
    Ok(format!(
        "http server {url}: matches the resource metadata; tools/list, {tools} tools"
    ))
}

fn curl_json(args: &[&str]) -> Result<Value, String> {
    let output = Command::new("curl")
        .args(args)
        .output()
        .map_err(|error| format!("curl: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let json_text = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or(&text);
    serde_json::from_str(json_text).map_err(|error| format!("{error} in {text:?}"))
}

fn run_json(workspace: &Workspace, block: &Block) -> Result<String, String> {
    let value: Value =
        serde_json::from_str(&block.text).map_err(|error| format!("not JSON: {error}"))?;
    let inputs: Vec<Value> = value["inputs"].as_array().cloned().unwrap_or_default();
    let servers = value.get("mcpServers").or_else(|| value.get("servers"));
    let Some(servers) = servers.and_then(Value::as_object) else {
        return Ok("valid JSON".to_owned());
    };
    let mut done = Vec::new();
    for (name, server) in servers {
        let outcome = if server.get("command").is_some() {
            exchange_over_stdio(workspace, server, &inputs)
        } else if server["type"] == "http" || server.get("url").is_some() {
            exchange_over_http(workspace, server, &inputs)
        } else {
            Err("neither a command nor a url".to_owned())
        };
        done.push(outcome.map_err(|error| format!("server {name:?}: {error}"))?);
    }
    Ok(done.join("; "))
}

/// One command of a `console` transcript and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The steps of a transcript: a `$ ` line is a command (a trailing `\` continues it on the next line),
/// the lines up to the next command are what it printed.
fn steps_of(text: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(command) = line.strip_prefix("$ ") {
            let mut command = command.to_owned();
            while command.ends_with('\\') {
                let next = lines
                    .next()
                    .ok_or("the last command ends with `\\` but no line follows")?;
                command.push('\n');
                command.push_str(next);
            }
            steps.push(Step {
                command,
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.trim_end().to_owned());
        } else if !line.trim().is_empty() {
            return Err(format!(
                "a transcript starts with a `$ ` command, not {line:?}"
            ));
        }
    }
    for step in &mut steps {
        while step.expected.last().is_some_and(|line| line.is_empty()) {
            step.expected.pop();
        }
    }
    Ok(steps)
}

/// Text with what varies between runs made uniform, lower-case: words of 20 or more letters, digits, `-`
/// and `_` (ids, keys, hashes, secrets, tokens) become `<id>`, other runs of digits `0`.
fn uniform(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().count() >= 20 {
            out.push_str("<id>");
        } else {
            let mut in_digits = false;
            for c in word.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('0');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.to_lowercase()
}

/// Whether `text` matches `pattern`, where `…` in the pattern matches anything.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the printed JSON `actual` has the shape of the documented `expected` (see the module docs).
fn same_shape(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(documented), Value::Object(printed)) => {
            let documented_keys: std::collections::BTreeSet<&String> = documented.keys().collect();
            let printed_keys: std::collections::BTreeSet<&String> = printed.keys().collect();
            if documented_keys != printed_keys {
                return Err(format!(
                    "{at}: the docs show the keys {documented_keys:?}, the server printed {printed_keys:?}"
                ));
            }
            for (key, value) in documented {
                same_shape(value, &printed[key], &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(documented), Value::Array(printed)) => {
            if printed.len() < documented.len() {
                return Err(format!(
                    "{at}: the docs show {} items, the server printed {}",
                    documented.len(),
                    printed.len()
                ));
            }
            for (index, (value, got)) in documented.iter().zip(printed).enumerate() {
                same_shape(value, got, &format!("{at}[{index}]"))?;
            }
            Ok(())
        }
        (Value::String(documented), Value::String(printed)) => {
            if documented.contains('…') || uniform(documented) == uniform(printed) {
                Ok(())
            } else {
                Err(format!(
                    "{at}: the docs show {documented:?}, the server printed {printed:?}"
                ))
            }
        }
        (Value::Number(_), Value::Number(_)) => Ok(()),
        (documented, printed) if documented == printed => Ok(()),
        (documented, printed) => Err(format!(
            "{at}: the docs show {documented}, the server printed {printed}"
        )),
    }
}

/// Whether one printed line matches a documented line: JSON by shape, text after [`uniform`] with `…`.
fn line_matches(documented: &str, printed: &str) -> bool {
    let json = |text: &str| {
        let text = text.trim();
        (text.starts_with('{') || text.starts_with('['))
            .then(|| serde_json::from_str::<Value>(text).ok())
            .flatten()
    };
    match (json(documented), json(printed)) {
        (Some(documented), Some(printed)) => same_shape(&documented, &printed, "$").is_ok(),
        (Some(_), None) => false,
        _ => glob(&uniform(documented.trim()), &uniform(printed.trim())),
    }
}

/// Checks what a command printed against what the transcript shows under it.
fn check_output(expected: &[String], printed: &str) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    let whole = expected.join("\n");
    if expected.len() > 1 {
        if let Ok(documented) = serde_json::from_str::<Value>(&whole) {
            let printed: Value = serde_json::from_str(printed.trim()).map_err(|error| {
                format!("the docs show JSON, the command printed ({error}):\n{printed}")
            })?;
            return same_shape(&documented, &printed, "$");
        }
    }
    let lines: Vec<&str> = printed.lines().map(str::trim_end).collect();
    let mut from = 0;
    for documented in expected.iter().filter(|line| !line.trim().is_empty()) {
        let Some(found) = (from..lines.len()).find(|&index| line_matches(documented, lines[index]))
        else {
            // For a JSON answer, say what differs from the first JSON line printed.
            let why = serde_json::from_str::<Value>(documented)
                .ok()
                .and_then(|documented| {
                    let got = lines[from..]
                        .iter()
                        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())?;
                    same_shape(&documented, &got, "$").err()
                })
                .map(|why| format!(" ({why})"))
                .unwrap_or_default();
            return Err(format!(
                "the docs show the line {documented:?}{why}; the command printed:\n{printed}"
            ));
        };
        from = found + 1;
    }
    Ok(())
}

const STEP_MARK: &str = "@@docs-step-done@@";

/// Runs a transcript's commands in one shell, in order, and checks each one's output.
fn run_console(workspace: &Workspace, block: &Block) -> Result<String, String> {
    let steps = steps_of(&block.text)?;
    if steps.is_empty() {
        return Err("a console block without a `$ ` command".to_owned());
    }
    let mut script = String::from("exec 2>&1\n");
    for step in &steps {
        script.push_str(&step.command);
        script.push_str(&format!("\nprintf '\\n{STEP_MARK}\\n'\n"));
    }
    let path = workspace
        .path()
        .join(format!("block-{}-console.sh", block.line));
    std::fs::write(&path, script).map_err(|error| error.to_string())?;
    let mut command = workspace.command("bash");
    command.args(["-e", "-o", "pipefail"]).arg(&path);
    let output = run_to_end(command, Duration::from_secs(300))?;
    let stdout = output
        .strip_prefix("stdout:\n")
        .and_then(|rest| rest.rsplit_once("\nstderr:\n"))
        .map(|(stdout, _)| stdout)
        .unwrap_or(&output);
    let printed: Vec<&str> = stdout.split(&format!("\n{STEP_MARK}\n")).collect();
    for (index, step) in steps.iter().enumerate() {
        let got = printed.get(index).copied().unwrap_or_default();
        check_output(&step.expected, got)
            .map_err(|error| format!("$ {}\n{error}", step.command))?;
    }
    Ok(format!(
        "{} commands, their output as documented",
        steps.len()
    ))
}

fn run_block(workspace: &mut Workspace, block: &Block) -> Result<String, String> {
    match block.language.as_str() {
        "sh" | "bash" | "shell" => run_shell(workspace, block),
        "console" => run_console(workspace, block),
        "json" => run_json(workspace, block),
        "js" | "javascript" | "mjs" => {
            let node = which("node").unwrap_or_else(|| PathBuf::from("/usr/bin/node"));
            if !repo().join("tests/clients/node_modules").exists() {
                return Err(
                    "tests/clients/node_modules is missing: run tests/clients/setup.sh".to_owned(),
                );
            }
            run_program(workspace, block, &node, "mjs")
        }
        "python" | "py" => run_program(
            workspace,
            block,
            &repo().join("tests/clients/.venv/bin/python"),
            "py",
        ),
        other => Err(format!(
            "no runner for {other:?} blocks: mark it `<!-- doc-test: skip (reason) -->` or use sh, json, js \
             or python"
        )),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Languages of output and transcripts: shown, never run.
fn is_output(block: &Block) -> bool {
    matches!(block.language.as_str(), "" | "text" | "output")
}

#[test]
fn markers_need_a_reason_and_blocks_are_found_with_their_lines() {
    let doc = "# T\n\n<!-- doc-test: skip (needs a browser) -->\n```sh\necho a\n```\n\n\
               <!-- doc-test: background -->\n```sh\nsleep 1\n```\n  ```json\n  {}\n  ```\n";
    let blocks = blocks_of("t.md", doc).unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].marker, Marker::Skip("needs a browser".to_owned()));
    assert_eq!((blocks[0].line, blocks[0].text.as_str()), (4, "echo a\n"));
    assert_eq!(blocks[1].marker, Marker::Background);
    assert_eq!(
        (blocks[2].language.as_str(), blocks[2].text.as_str()),
        ("json", "{}\n")
    );
    let error = blocks_of("t.md", "<!-- doc-test: skip -->\n```sh\nx\n```\n").unwrap_err();
    assert!(error.starts_with("t.md:2: bad marker"), "{error}");
    assert!(
        blocks_of("t.md", "```sh\nx\n")
            .unwrap_err()
            .contains("never closed")
    );
}

#[test]
fn transcripts_split_into_commands_and_their_output_is_compared_by_shape() {
    let steps = steps_of("$ A=1; echo \\\n  $A\n{\"a\":1}\n\n$ true\n").unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].command, "A=1; echo \\\n  $A");
    assert_eq!(steps[0].expected, ["{\"a\":1}"]);
    assert!(steps[1].expected.is_empty());
    assert!(steps_of("output first\n$ true\n").is_err());
    // Values that vary (numbers, ids, elided strings) match by form; keys and fixed values must agree.
    let documented = vec![
        r#"{"access_token":"eyJ…","expires_in":3600,"kid":"CfE7XiWSyhCGN5KWsGTk6CrLz-sBSD2UNkF2fXXz4n4","scope":"read:labs"}"#.to_owned(),
    ];
    let printed = r#"{"access_token":"eyJhbGciOi.x.y","expires_in":60,"kid":"Zz9XiWSyhCGN5KWsGTk6CrLz-sBSD2UNkF2fXXz4n5","scope":"read:labs"}"#;
    assert_eq!(check_output(&documented, printed), Ok(()));
    let other_scope = printed.replace("read:labs", "read:vitals");
    assert!(check_output(&documented, &other_scope).is_err());
    let extra_key = printed.replace("\"scope\"", "\"refresh_token\":\"r\",\"scope\"");
    assert!(check_output(&documented, &extra_key).is_err());
    // Lines: in order, case-insensitive, digits and long ids uniform, `…` anything.
    let documented = vec![
        "HTTP/1.1 401 Unauthorized".to_owned(),
        "cache-control: no-store".to_owned(),
        "audit log intact: 12 rows; head seq 12 hash 392e2c1a598fb7ae164cddfc4e67d28bd722abf0ad383707dc060dbb11a6e517".to_owned(),
    ];
    let printed = "HTTP/1.1 401 Unauthorized\r\nDate: x\r\nCache-Control: no-store\r\n\naudit log intact: 3 rows; head seq 3 hash 00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa\n";
    assert_eq!(check_output(&documented, printed), Ok(()));
    assert!(check_output(&documented, "HTTP/1.1 200 OK\n").is_err());
    assert!(glob("a…c…e", "abcde") && !glob("a…c", "abd"));
}

#[test]
fn every_block_of_the_docs_runs_as_printed() {
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    for file in doc_files() {
        let name = file
            .strip_prefix(repo())
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        match blocks_of(&name, &text) {
            Ok(found) => blocks.extend(found),
            Err(error) => problems.push(error),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Only one docs run at a time on this machine: the documented port is shared.
    let lock = std::fs::File::create(std::env::temp_dir().join("ehr-mcp-docs-test.lock")).unwrap();
    lock.lock().unwrap();
    let mut workspace = Workspace::new();
    let (mut ran, mut skipped, mut shown) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for block in &blocks {
        if let Marker::Skip(reason) = &block.marker {
            skipped.push(format!("{}: {reason}", block.place()));
            continue;
        }
        if is_output(block) {
            shown.push(block.place());
            continue;
        }
        match run_block(&mut workspace, block) {
            Ok(summary) => {
                let first = summary
                    .lines()
                    .find(|l| !l.trim().is_empty() && *l != "stdout:")
                    .unwrap_or("");
                ran.push(format!(
                    "{}: ok {}",
                    block.place(),
                    first.chars().take(100).collect::<String>()
                ));
            }
            Err(error) => failures.push(format!(
                "{}: FAILED\n--- block ---\n{}--- what happened ---\n{error}\n",
                block.place(),
                block.text
            )),
        }
    }
    println!("ran {} blocks:\n  {}", ran.len(), ran.join("\n  "));
    println!(
        "skipped {} blocks:\n  {}",
        skipped.len(),
        skipped.join("\n  ")
    );
    println!("output or transcripts, not run: {}", shown.join(", "));
    assert!(
        failures.is_empty(),
        "{} of {} doc blocks failed (run `cargo test --test it docs_snippets -- --nocapture` for the \
         list):\n\n{}",
        failures.len(),
        ran.len() + failures.len(),
        failures.join("\n")
    );
    assert!(ran.len() >= 5, "too few blocks ran: {ran:?}");
}
