//! docs/OPERATIONS.md against a real scrape: the real binary (`serve --demo`) gets a few calls of every
//! kind, then every metric of the doc's table must be in `/metrics` with the documented type and exactly
//! the documented labels, every `ehr_mcp_*` name in the doc must exist, and every PromQL selector in the doc
//! (`{outcome!="success"}`, …) must name labels and values the server really emitted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::ops_binary::BinaryServer;

const DOC: &str = include_str!("../../docs/OPERATIONS.md");

/// One sample line of the Prometheus text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
}

fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let series = line.rsplit_once(' ').map_or(line, |(series, _)| series);
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = split_matchers(labels)
                .into_iter()
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
            }
        })
        .collect()
}

/// Splits `a="x",b="y,z"` on the commas outside quotes.
fn split_matchers(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts.into_iter().map(|p| p.trim().to_owned()).collect()
}

/// A metric of the doc's table: name, type, label names.
#[derive(Debug)]
struct Documented {
    name: String,
    kind: String,
    labels: BTreeSet<String>,
}

fn documented_metrics() -> Vec<Documented> {
    DOC.lines()
        .filter(|line| line.starts_with("| `ehr_mcp_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let labels = cells[3]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            Documented {
                name: cells[1].trim_matches('`').to_owned(),
                kind: cells[2].to_owned(),
                labels,
            }
        })
        .collect()
}

/// Every `ehr_mcp_…` name written in the doc.
fn names_in_doc() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("ehr_mcp_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if end > "ehr_mcp_".len() {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Every selector `name{…}` in the doc, with its matchers (`label`, operator, value if quoted).
/// A label matcher of a selector: label, operator, value when quoted.
type Matcher = (String, String, Option<String>);

fn selectors_in_doc() -> Vec<(String, Vec<Matcher>)> {
    let mut selectors = Vec::new();
    for name in names_in_doc() {
        let needle = format!("{name}{{");
        for (start, _) in DOC.match_indices(&needle) {
            let body = &DOC[start + needle.len()..];
            let Some(end) = body.find('}') else { continue };
            let matchers = split_matchers(&body[..end])
                .into_iter()
                .filter_map(|matcher| {
                    let at = matcher.find(['=', '!'])?;
                    let label = matcher[..at].trim().to_owned();
                    let rest = &matcher[at..];
                    let op_len = if rest.starts_with("!=")
                        || rest.starts_with("=~")
                        || rest.starts_with("!~")
                    {
                        2
                    } else {
                        1
                    };
                    let value = rest[op_len..].trim();
                    let value =
                        (value.starts_with('"') && value.ends_with('"') && value.len() >= 2)
                            .then(|| value[1..value.len() - 1].to_owned());
                    Some((label, rest[..op_len].to_owned(), value))
                })
                .collect();
            selectors.push((name.clone(), matchers));
        }
    }
    selectors
}

/// The metric family a sample belongs to (histogram series end in `_bucket`, `_sum`, `_count`).
fn family<'a>(sample: &'a str, families: &BTreeSet<String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && families.contains(base)
        {
            return base;
        }
    }
    sample
}

async fn mcp_call(
    server: &BinaryServer,
    token: &str,
    id: u64,
    name: &str,
    arguments: Value,
) -> u16 {
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn token(server: &BinaryServer, client_id: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
}

async fn access_token(server: &BinaryServer, client_id: &str, secret: &str) -> String {
    let response = token(server, client_id, secret).await;
    assert_eq!(response.status(), 200, "token for {client_id}");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_metric_label_and_selector_in_operations_md_is_in_a_real_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ehr.db").display());
    let credentials_file = dir.path().join("credentials.json");
    let server = BinaryServer::start(
        &[
            "--demo",
            "--credentials-file",
            &credentials_file.display().to_string(),
        ],
        &[("DATABASE_URL", url.as_str())],
    );
    // A client allowed one call an hour, registered next to the running server
    // (before it, `--demo` would see a client and add no demo clients).
    let registered = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args([
            "client",
            "register",
            "--app-id",
            "limited",
            "--app-name",
            "Limited",
        ])
        .args([
            "--role",
            "doctor",
            "--scopes",
            "read:patients",
            "--rate-limit",
            "1",
        ])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(registered.status.success(), "{registered:?}");
    let limited: Value = serde_json::from_slice(&registered.stdout).unwrap();
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials_file).unwrap()).unwrap();
    let copilot = credentials
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["client_id"] == "copilot-studio")
        .unwrap();
    let secret = copilot["client_secret"].as_str().unwrap();

    // Tokens issued and refused; tool calls that succeed and fail; a garbage bearer.
    let doctor = access_token(&server, "copilot-studio", secret).await;
    assert_eq!(
        token(&server, "copilot-studio", "wrong").await.status(),
        401
    );
    assert_eq!(
        mcp_call(&server, &doctor, 1, "get_patient", json!({"mrn": "MRN001"})).await,
        200
    );
    assert_eq!(
        mcp_call(&server, &doctor, 2, "get_patient", json!({"mrn": "MRN999"})).await,
        200
    );
    assert_eq!(
        mcp_call(
            &server,
            "garbage",
            3,
            "get_patient",
            json!({"mrn": "MRN001"})
        )
        .await,
        401
    );
    // The rate-limited client: its second call is refused.
    let limited_token = access_token(
        &server,
        limited["client_id"].as_str().unwrap(),
        limited["client_secret"].as_str().unwrap(),
    )
    .await;
    for id in 4..6 {
        mcp_call(
            &server,
            &limited_token,
            id,
            "search_patients",
            json!({"search_term": "Doe"}),
        )
        .await;
    }
    // A body over the message limit.
    let oversized = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(&doctor)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    // A WebSocket connection, opened and closed.
    let mut request = server
        .url("/ws")
        .replace("http", "ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {doctor}")).unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.close(None).await.unwrap();

    let scrape = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_samples(&scrape);
    let documented = documented_metrics();
    assert!(documented.len() >= 15, "the doc's table: {documented:?}");
    let families: BTreeSet<String> = documented.iter().map(|m| m.name.clone()).collect();
    let mut problems = Vec::new();

    for metric in &documented {
        if !scrape.contains(&format!("# TYPE {} {}\n", metric.name, metric.kind)) {
            problems.push(format!(
                "{}: no `# TYPE {} {}`",
                metric.name, metric.name, metric.kind
            ));
        }
        let of_metric: Vec<&Sample> = samples
            .iter()
            .filter(|s| family(&s.name, &families) == metric.name)
            .collect();
        if of_metric.is_empty() {
            problems.push(format!("{}: no sample in the scrape", metric.name));
            continue;
        }
        let emitted: BTreeSet<String> = of_metric
            .iter()
            .flat_map(|s| s.labels.keys().cloned())
            .filter(|label| label != "le")
            .collect();
        if emitted != metric.labels {
            problems.push(format!(
                "{}: the doc lists labels {:?}, the scrape has {:?}",
                metric.name, metric.labels, emitted
            ));
        }
    }
    for name in names_in_doc() {
        if !samples
            .iter()
            .any(|s| family(&s.name, &families) == name || s.name == name)
        {
            problems.push(format!("{name}: named in the doc, absent from the scrape"));
        }
    }
    let selectors = selectors_in_doc();
    assert!(!selectors.is_empty(), "the doc's alerts have selectors");
    for (name, matchers) in &selectors {
        for (label, op, value) in matchers {
            let values: BTreeSet<&str> = samples
                .iter()
                .filter(|s| family(&s.name, &families) == name)
                .filter_map(|s| s.labels.get(label).map(String::as_str))
                .collect();
            if values.is_empty() {
                problems.push(format!(
                    "{name}{{{label}…}}: the metric has no label {label:?}"
                ));
                continue;
            }
            let Some(value) = value else { continue };
            let wanted: Vec<&str> = match op.as_str() {
                "=~" | "!~" => value.split('|').collect(),
                _ => vec![value.as_str()],
            };
            for wanted in wanted {
                if !values.contains(wanted) {
                    problems.push(format!(
                        "{name}{{{label}{op}\"{value}\"}}: the server emitted {label} values {values:?}, \
                         never {wanted:?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/OPERATIONS.md vs /metrics:\n{}\n\nscrape:\n{scrape}",
        problems.join("\n")
    );
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}
