//! The values the docs tell a user to paste into a client that cannot run here (Copilot Studio's web UI,
//! Claude's connector dialog): read out of `docs/CLIENTS.md` and compared with what a server started with
//! the documented public URL publishes — its OAuth authorization-server metadata (RFC 8414, also as
//! `openid-configuration`), its protected-resource metadata (RFC 9728) and the `WWW-Authenticate`
//! challenge of `/mcp` — and, for redirect hosts, scopes and the API-key header, with a real request.

use std::collections::BTreeSet;

use ehr_mcp::auth::api_keys;
use ehr_mcp::domain::ids::ClientId;
use serde_json::{Value, json};

use crate::mcp_support::{McpApp, spawn_mcp_app};

/// The public URL the docs use for a server reachable from the cloud.
const DOCS_PUBLIC_URL: &str = "https://ehr.example.org";

fn clients_doc() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/CLIENTS.md");
    std::fs::read_to_string(path).unwrap()
}

/// The text of the section that starts at the heading `title` (up to the next heading of its level).
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(title)
        .unwrap_or_else(|| panic!("docs/CLIENTS.md has no section {title:?}"));
    let level = title.chars().take_while(|c| *c == '#').count();
    let rest = &doc[start + title.len()..];
    let end = rest
        .match_indices("\n#")
        .find(|(at, _)| {
            let heading = &rest[at + 1..];
            let depth = heading.chars().take_while(|c| *c == '#').count();
            depth <= level && heading[depth..].starts_with(' ')
        })
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// The first backticked value right after `label` in `text` (`*Server URL* `https://…``).
fn value_after(text: &str, label: &str) -> String {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    let rest = &text[at + label.len()..];
    let open = rest
        .find('`')
        .unwrap_or_else(|| panic!("no value after {label:?}"));
    let close = rest[open + 1..].find('`').unwrap();
    rest[open + 1..open + 1 + close].to_owned()
}

/// The double-quoted argument right after `flag` in `text` (`--scopes "read:patients read:labs"`).
fn quoted_after(text: &str, flag: &str) -> String {
    let at = text
        .find(&format!("{flag}\""))
        .unwrap_or_else(|| panic!("no {flag:?} in:\n{text}"));
    let rest = &text[at + flag.len() + 1..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The backticked values in the value cell of the table row whose first cell is `field`.
fn table_values(text: &str, field: &str) -> Vec<String> {
    let row = text
        .lines()
        .map(str::trim)
        .find(|line| {
            line.starts_with('|')
                && line.trim_matches('|').split('|').next().map(str::trim) == Some(field)
        })
        .unwrap_or_else(|| panic!("no table row {field:?} in:\n{text}"));
    let cell = row.trim_matches('|').split('|').nth(1).unwrap_or_default();
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every https URL in `text` (up to a backtick, quote, space or closing parenthesis).
fn urls_in(text: &str) -> Vec<String> {
    text.match_indices("https://")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(['`', '"', ' ', ')', '\n', '*', ','])
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches('.').to_owned()
        })
        .collect()
}

async fn get_json(mcp: &McpApp, path: &str) -> Value {
    let response = reqwest::get(mcp.app.url(path)).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// Registers a client dynamically with one redirect URI, as Copilot Studio and Claude do.
async fn register_with_redirect(mcp: &McpApp, redirect: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(mcp.app.url("/oauth/register"))
        .json(
            &json!({"client_name": "docs check", "redirect_uris": [redirect],
                      "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_values_the_client_docs_give_for_copilot_studio_and_claude_match_the_server_metadata() {
    let doc = clients_doc();
    let before = section(&doc, "## Before you start");
    assert!(
        before.contains(&format!("EHR_MCP_PUBLIC_URL={DOCS_PUBLIC_URL} ")),
        "the docs start the server with the public URL {DOCS_PUBLIC_URL}"
    );
    let mcp = spawn_mcp_app(&["--public-url", DOCS_PUBLIC_URL]).await;
    let server = get_json(&mcp, "/.well-known/oauth-authorization-server").await;
    let openid = get_json(&mcp, "/.well-known/openid-configuration").await;
    let resource = get_json(&mcp, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(server["issuer"], DOCS_PUBLIC_URL);
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
    ] {
        assert_eq!(openid[field], server[field], "openid-configuration {field}");
    }
    let scopes: BTreeSet<&str> = server["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();

    // Copilot Studio: the server URL, then each way to authenticate.
    let copilot = section(&doc, "## Microsoft Copilot Studio");
    let server_url = value_after(copilot, "*Server URL*");
    assert_eq!(server_url, resource["resource"].as_str().unwrap());
    assert_eq!(
        resource["authorization_servers"],
        json!([server["issuer"]]),
        "{resource}"
    );
    // The 401 Copilot Studio and Claude start from names the metadata the docs name.
    let challenge = reqwest::Client::new()
        .post(mcp.app.url("/mcp"))
        .header("Content-Type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 401);
    let header = challenge.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.contains(&format!(
            "resource_metadata=\"{DOCS_PUBLIC_URL}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{header}"
    );

    // Dynamic discovery: the documents and the registration endpoint it names, and its redirect host.
    let dynamic = section(copilot, "### OAuth 2.0, Dynamic discovery");
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ] {
        assert!(dynamic.contains(&format!("`{path}`")), "{path}");
    }
    assert!(dynamic.contains("`/oauth/register`"));
    assert_eq!(
        server["registration_endpoint"],
        format!("{DOCS_PUBLIC_URL}/oauth/register")
    );
    let redirect_host = value_after(dynamic, "redirect URL on");
    assert_eq!(redirect_host, "global.consent.azure-apim.net");
    let status =
        register_with_redirect(&mcp, &format!("https://{redirect_host}/redirect/cr123-ehr")).await;
    assert_eq!(
        status, 201,
        "Copilot Studio's redirect host is allowed by default"
    );
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));

    // Manual: every URL of the table is the endpoint the metadata names; the scopes exist.
    let manual = section(copilot, "### OAuth 2.0, Manual");
    let one = |field: &str| {
        let values = table_values(manual, field);
        assert!(!values.is_empty(), "no value for {field}");
        values[0].clone()
    };
    assert_eq!(
        one("Authorization URL"),
        server["authorization_endpoint"].as_str().unwrap()
    );
    assert_eq!(
        one("Token URL template"),
        server["token_endpoint"].as_str().unwrap()
    );
    assert_eq!(
        one("Refresh URL"),
        server["token_endpoint"].as_str().unwrap()
    );
    let grants = server["grant_types_supported"].as_array().unwrap();
    assert!(
        grants.contains(&json!("refresh_token")) && grants.contains(&json!("authorization_code"))
    );
    for scope in table_values(manual, "Scopes")
        .iter()
        .flat_map(|value| value.split_whitespace())
        .chain(quoted_after(manual, "--scopes ").split_whitespace())
    {
        assert!(
            scopes.contains(scope),
            "the docs' scope {scope} is not in scopes_supported"
        );
    }
    assert!(manual.contains("https://global.consent.azure-apim.net/redirect"));

    // API key: the header the docs name carries the key the CLI command creates.
    let api_key = section(copilot, "### API key");
    let header_name = value_after(api_key, "*Header name*");
    let (_, key) = api_keys::create(
        &mcp.app.db.store,
        &ClientId::parse("copilot-studio").unwrap(),
        "docs check",
        Some(1),
    )
    .await
    .unwrap();
    let listed: Value = reqwest::Client::new()
        .post(mcp.mcp_url())
        .header(header_name.as_str(), key)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{header_name}: {listed}"
    );

    // Client credentials (the earlier setup): the token URL.
    let earlier = section(copilot, "### Client credentials");
    assert_eq!(
        value_after(earlier, "Token URL"),
        server["token_endpoint"].as_str().unwrap()
    );
    assert!(grants.contains(&json!("client_credentials")));

    // Claude: the server URL and the callback the docs say is allowed.
    let claude = section(&doc, "## Claude (custom connector)");
    assert_eq!(
        value_after(claude, "*Remote MCP server URL*"),
        resource["resource"].as_str().unwrap()
    );
    let callbacks: Vec<String> = urls_in(claude)
        .into_iter()
        .filter(|url| url.contains("callback"))
        .collect();
    assert!(
        !callbacks.is_empty(),
        "the Claude section names its callback"
    );
    for callback in callbacks {
        assert_eq!(
            register_with_redirect(&mcp, &callback).await,
            201,
            "{callback}"
        );
    }
    // Every https URL of these sections is on the documented public URL or a documented client host.
    for url in urls_in(copilot).into_iter().chain(urls_in(claude)) {
        assert!(
            url.starts_with(DOCS_PUBLIC_URL)
                || url.starts_with("https://global.consent.azure-apim.net/")
                || url.starts_with("https://claude.ai/"),
            "an unexpected URL in the client docs: {url}"
        );
        if let Some(path) = url.strip_prefix(DOCS_PUBLIC_URL) {
            let known = [
                server["authorization_endpoint"].as_str(),
                server["token_endpoint"].as_str(),
                resource["resource"].as_str(),
            ];
            assert!(
                known.contains(&Some(url.as_str())) || path.is_empty(),
                "{url} is none of the published endpoints"
            );
        }
    }
    mcp.shutdown().await;
}

#[test]
fn the_doc_readers_find_sections_values_and_table_cells() {
    let doc = "# T\n## A\nx *Server URL* `https://h/mcp` y\n### B\n| field | value |\n|---|---|\n| Token URL | `https://h/t` |\n## C\nz\n";
    let a = section(doc, "## A");
    assert!(a.contains("### B") && !a.contains("## C"));
    assert_eq!(value_after(a, "*Server URL*"), "https://h/mcp");
    assert_eq!(table_values(a, "Token URL"), ["https://h/t"]);
    assert_eq!(urls_in(a), ["https://h/mcp", "https://h/t"]);
    assert_eq!(
        quoted_after("a --scopes \"r:a r:b\" c", "--scopes "),
        "r:a r:b"
    );
}
