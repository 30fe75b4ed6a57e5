//! MCP resources, prompts and compact views through the real server over Streamable HTTP (raw JSON-RPC,
//! protocol 2025-11-25): listings show what the caller may read, reads and prompts pass the tools' policy
//! (a patient client reaches only its own chart; a summary withholds the kinds its scopes do not cover),
//! every read writes one audit row, the FHIR summary validates with two validators we did not write, and
//! `fields`, `cursor` and the result budget shape list results.

use std::collections::BTreeSet;

use ehr_mcp::store::audit::AuditFilter;
use serde_json::{Value, json};

use crate::mcp_support::{McpApp, spawn_mcp_app, spawn_on_seed_export};

async fn read(mcp: &McpApp, token: &str, uri: &str) -> Value {
    mcp.rpc(token, "resources/read", json!({"uri": uri})).await
}

/// The text of a successful read, with its MIME type checked.
fn text_of(answer: &Value, mime: &str) -> String {
    let content = &answer["result"]["contents"][0];
    assert_eq!(content["mimeType"], mime, "{answer}");
    content["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

fn names(answer: &Value, list: &str, key: &str) -> BTreeSet<String> {
    answer["result"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {answer}"))
        .iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn audit_rows(mcp: &McpApp, action: &str) -> Vec<ehr_mcp::store::audit::AuditRecord> {
    mcp.app
        .db
        .store
        .query_audit(&AuditFilter {
            action: Some(action.to_owned()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn listings_show_what_the_caller_may_read() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.token("copilot-studio").await;
    let patient = mcp.token("patient-portal").await;
    let lab = mcp.token("lab-integration").await;

    let listed = mcp.rpc(&doctor, "resources/list", json!({})).await;
    assert_eq!(
        names(&listed, "resources", "uri"),
        set(&["ehr://providers"])
    );
    let templates = mcp
        .rpc(&doctor, "resources/templates/list", json!({}))
        .await;
    assert_eq!(
        names(&templates, "resourceTemplates", "uriTemplate"),
        set(&[
            "ehr://patients/{mrn}",
            "ehr://patients/{mrn}/summary",
            "ehr://patients/{mrn}/summary.md",
            "ehr://patients/{mrn}/fhir",
            "ehr://providers/{npi}",
        ])
    );

    let own = mcp.rpc(&patient, "resources/list", json!({})).await;
    assert_eq!(
        names(&own, "resources", "uri"),
        set(&[
            "ehr://providers",
            "ehr://patients/MRN001",
            "ehr://patients/MRN001/summary",
            "ehr://patients/MRN001/summary.md",
            "ehr://patients/MRN001/fhir",
        ])
    );

    // lab-integration holds read:patients read:labs: no provider directory, no medication review.
    let lab_listed = mcp.rpc(&lab, "resources/list", json!({})).await;
    assert!(
        names(&lab_listed, "resources", "uri").is_empty(),
        "{lab_listed}"
    );
    let lab_prompts = mcp.rpc(&lab, "prompts/list", json!({})).await;
    assert_eq!(
        names(&lab_prompts, "prompts", "name"),
        set(&["discharge_checklist", "lab_trend", "pre_visit_summary"])
    );
    let prompts = mcp.rpc(&doctor, "prompts/list", json!({})).await;
    assert_eq!(
        names(&prompts, "prompts", "name"),
        set(&[
            "discharge_checklist",
            "lab_trend",
            "medication_review",
            "pre_visit_summary"
        ])
    );
    let review = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "medication_review")
        .unwrap();
    assert_eq!(review["arguments"][0]["name"], "mrn");
    assert_eq!(review["arguments"][0]["required"], true);
    mcp.shutdown().await;
}

#[tokio::test]
async fn reads_pass_the_policy_withhold_and_are_audited() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.token("copilot-studio").await;
    let nurse = mcp.token("nurse-station").await;
    let patient = mcp.token("patient-portal").await;
    let admin = mcp.token("admin-console").await;

    let summary = text_of(
        &read(&mcp, &doctor, "ehr://patients/MRN001/summary.md").await,
        "text/markdown",
    );
    assert!(summary.starts_with("# John Doe (MRN001)"), "{summary}");
    for section in [
        "## Active medications",
        "Lisinopril",
        "## Allergies",
        "Penicillin",
    ] {
        assert!(summary.contains(section), "{section} missing:\n{summary}");
    }
    assert!(summary.contains("## Recent lab results"), "{summary}");
    assert!(!summary.contains("Withheld"), "{summary}");

    // The nurse station has no read:labs: the lab section is withheld and says so.
    let nurse_summary = text_of(
        &read(&mcp, &nurse, "ehr://patients/MRN001/summary.md").await,
        "text/markdown",
    );
    assert!(
        !nurse_summary.contains("## Recent lab results"),
        "{nurse_summary}"
    );
    assert!(nurse_summary.contains("Withheld"), "{nurse_summary}");
    assert!(
        nurse_summary.contains("recent_lab_results"),
        "{nurse_summary}"
    );
    let json_summary: Value = serde_json::from_str(&text_of(
        &read(&mcp, &nurse, "ehr://patients/MRN001/summary").await,
        "application/json",
    ))
    .unwrap();
    assert!(json_summary.get("recent_lab_results").is_none());
    assert_eq!(json_summary["withheld"], json!(["recent_lab_results"]));

    // A patient client reads its own chart only.
    let own: Value = serde_json::from_str(&text_of(
        &read(&mcp, &patient, "ehr://patients/MRN001").await,
        "application/json",
    ))
    .unwrap();
    assert_eq!(own["patient"]["mrn"], "MRN001");
    let other = read(&mcp, &patient, "ehr://patients/MRN002/summary.md").await;
    assert_eq!(other["error"]["data"]["code"], "forbidden", "{other}");
    assert!(!other.to_string().contains("Mary"), "{other}");
    // Admins see no clinical data.
    let refused = read(&mcp, &admin, "ehr://patients/MRN001/fhir").await;
    assert_eq!(refused["error"]["data"]["code"], "forbidden", "{refused}");

    let unknown = read(&mcp, &doctor, "ehr://patients/MRN001/notes").await;
    assert_eq!(unknown["error"]["code"], -32002, "{unknown}");
    let missing = read(&mcp, &doctor, "ehr://patients/MRN999/summary").await;
    assert_eq!(missing["error"]["data"]["code"], "not_found", "{missing}");

    let providers: Value = serde_json::from_str(&text_of(
        &read(&mcp, &patient, "ehr://providers").await,
        "application/json",
    ))
    .unwrap();
    assert_eq!(providers["count"], 2, "{providers}");

    let rows = audit_rows(&mcp, "resources/read").await;
    // Eight reads reached the policy (the unknown URI did not parse): one row each, refusals included.
    assert_eq!(rows.len(), 8, "one audit row per read");
    let denied = rows.iter().filter(|row| row.outcome == "denied").count();
    assert_eq!(denied, 2);
    assert!(
        rows.iter()
            .any(|row| row.patient_mrn.as_deref() == Some("MRN002"))
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn the_fhir_summary_is_a_valid_bundle_holding_what_the_scopes_allow() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.token("copilot-studio").await;
    let lab = mcp.token("lab-integration").await;
    let bundle: Value = serde_json::from_str(&text_of(
        &read(&mcp, &doctor, "ehr://patients/MRN001/fhir").await,
        "application/fhir+json",
    ))
    .unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let types = |bundle: &Value| -> BTreeSet<String> {
        bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = types(&bundle);
    for kind in [
        "Patient",
        "MedicationRequest",
        "AllergyIntolerance",
        "Observation",
        "DiagnosticReport",
    ] {
        assert!(all.contains(kind), "no {kind} in {all:?}");
    }
    let patient = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap();
    assert_eq!(patient["resource"]["id"], "MRN001");

    let lab_bundle: Value = serde_json::from_str(&text_of(
        &read(&mcp, &lab, "ehr://patients/MRN001/fhir").await,
        "application/fhir+json",
    ))
    .unwrap();
    let lab_types = types(&lab_bundle);
    assert!(lab_types.contains("DiagnosticReport"), "{lab_types:?}");
    assert!(!lab_types.contains("MedicationRequest"), "{lab_types:?}");
    assert!(!lab_types.contains("AllergyIntolerance"), "{lab_types:?}");

    let report = crate::fhir_validation::validate(&[bundle, lab_bundle]);
    assert_eq!(report["by_type"]["Bundle"], 2, "{report}");
    mcp.shutdown().await;
}

async fn prompt(mcp: &McpApp, token: &str, name: &str, arguments: Value) -> Value {
    mcp.rpc(
        token,
        "prompts/get",
        json!({"name": name, "arguments": arguments}),
    )
    .await
}

fn prompt_text(answer: &Value) -> String {
    let message = &answer["result"]["messages"][0];
    assert_eq!(message["role"], "user", "{answer}");
    message["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

#[tokio::test]
async fn prompts_pull_the_chart_through_the_policy() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.token("copilot-studio").await;
    let patient = mcp.token("patient-portal").await;
    let nurse = mcp.token("nurse-station").await;

    let review =
        prompt_text(&prompt(&mcp, &doctor, "medication_review", json!({"mrn": "MRN001"})).await);
    for expected in [
        "Review the medications of John Doe (MRN001)",
        "Lisinopril",
        "Penicillin",
    ] {
        assert!(review.contains(expected), "{expected} missing:\n{review}");
    }
    let brief = prompt_text(
        &prompt(
            &mcp,
            &doctor,
            "pre_visit_summary",
            json!({"mrn": "MRN001", "reason": "follow-up"}),
        )
        .await,
    );
    assert!(
        brief.contains("\"follow-up\"") && brief.contains("# John Doe (MRN001)"),
        "{brief}"
    );
    let trend = prompt_text(
        &prompt(
            &mcp,
            &doctor,
            "lab_trend",
            json!({"mrn": "MRN001", "test_name": "cbc"}),
        )
        .await,
    );
    assert!(trend.contains("Complete Blood Count (CBC)"), "{trend}");
    let checklist = prompt_text(
        &prompt(
            &mcp,
            &nurse,
            "discharge_checklist",
            json!({"mrn": "MRN001"}),
        )
        .await,
    );
    assert!(
        checklist.contains("## Upcoming appointments"),
        "{checklist}"
    );
    assert!(
        checklist.contains("recent_lab_results"),
        "the nurse's withheld labs are named:\n{checklist}"
    );

    let own = prompt(
        &mcp,
        &patient,
        "pre_visit_summary",
        json!({"mrn": "MRN001"}),
    )
    .await;
    assert!(prompt_text(&own).contains("MRN001"));
    let other = prompt(
        &mcp,
        &patient,
        "pre_visit_summary",
        json!({"mrn": "MRN002"}),
    )
    .await;
    assert_eq!(other["error"]["data"]["code"], "forbidden", "{other}");
    let nurse_trend = prompt(&mcp, &nurse, "lab_trend", json!({"mrn": "MRN001"})).await;
    assert_eq!(
        nurse_trend["error"]["data"]["code"], "forbidden",
        "{nurse_trend}"
    );

    let missing = prompt(&mcp, &doctor, "medication_review", json!({})).await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    let unknown = prompt(&mcp, &doctor, "write_my_notes", json!({"mrn": "MRN001"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    let rows = audit_rows(&mcp, "prompts/get").await;
    assert_eq!(
        rows.len(),
        7,
        "every prompt that reached the policy is audited"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn completion_of_prompt_and_template_arguments_follows_the_policy() {
    let mcp = spawn_mcp_app(&[]).await;
    let patient = mcp.token("patient-portal").await;
    let doctor = mcp.token("copilot-studio").await;
    let complete = |token: String, reference: Value, name: &'static str, value: &'static str| {
        let mcp = &mcp;
        async move {
            mcp.rpc(
                &token,
                "completion/complete",
                json!({"ref": reference, "argument": {"name": name, "value": value}}),
            )
            .await["result"]["completion"]["values"]
                .clone()
        }
    };
    let prompt_ref = json!({"type": "ref/prompt", "name": "medication_review"});
    let template_ref = json!({"type": "ref/resource", "uri": "ehr://patients/{mrn}/summary.md"});
    assert_eq!(
        complete(patient.clone(), prompt_ref.clone(), "mrn", "MRN").await,
        json!(["MRN001"])
    );
    assert_eq!(
        complete(patient, template_ref.clone(), "mrn", "MRN002").await,
        json!([])
    );
    assert_eq!(
        complete(doctor.clone(), template_ref, "mrn", "MRN").await,
        json!(["MRN001", "MRN002"])
    );
    let npi_ref = json!({"type": "ref/resource", "uri": "ehr://providers/{npi}"});
    assert_eq!(
        complete(doctor, npi_ref, "npi", "12345").await,
        json!(["1234567890"])
    );
    mcp.shutdown().await;
}

async fn call_tool(mcp: &McpApp, token: &str, name: &str, arguments: Value) -> Value {
    let answer = mcp
        .rpc(
            token,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
        .await;
    let result = &answer["result"];
    assert_ne!(result["isError"], true, "{answer}");
    result["structuredContent"].clone()
}

#[tokio::test]
async fn fields_pick_keys_and_the_budget_cuts_with_a_cursor() {
    let db = crate::support::TestDb::for_app().await;
    let mcp = spawn_on_seed_export(db).await;
    let doctor = mcp.token("copilot-studio").await;

    // Without `fields`, under the budget, the shape is the tool's own.
    let full = call_tool(
        &mcp,
        &doctor,
        "search_patients",
        json!({"search_term": "a", "limit": 100}),
    )
    .await;
    assert!(full.get("truncated").is_none(), "{full}");
    let page_size = full["count"].as_u64().unwrap();
    assert!(page_size > 30, "{full}");

    let compact = call_tool(
        &mcp,
        &doctor,
        "search_patients",
        json!({"search_term": "a", "limit": 100, "fields": ["mrn", "name"]}),
    )
    .await;
    assert_eq!(compact["count"], page_size);
    assert_eq!(
        compact["patients"][0].as_object().unwrap().len(),
        2,
        "{compact}"
    );
    let bad = mcp.rpc(
        &doctor,
        "tools/call",
        json!({"name": "get_medications", "arguments": {"mrn": "MRN001", "fields": ["password"]}}),
    )
    .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert!(bad.to_string().contains("not a key"), "{bad}");
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_result_over_the_budget_says_so_and_its_cursor_brings_the_rest() {
    let db = crate::support::TestDb::for_app().await;
    let mcp =
        crate::mcp_support::spawn_seed_export_with(db, &["--result-budget-bytes", "8192"]).await;
    let doctor = mcp.token("copilot-studio").await;
    let arguments = json!({"search_term": "a", "limit": 100});
    let mrns = call_tool(
        &mcp,
        &doctor,
        "search_patients",
        json!({"search_term": "a", "limit": 100, "fields": ["mrn"]}),
    )
    .await;
    let expected: Vec<Value> = mrns["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["mrn"].clone())
        .collect();
    assert!(expected.len() > 30);

    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut args = arguments.clone();
        if let Some(cursor) = &cursor {
            args["cursor"] = json!(cursor);
        }
        let page = call_tool(&mcp, &doctor, "search_patients", args).await;
        assert!(
            serde_json::to_vec(&page).unwrap().len() <= 8192,
            "over the budget"
        );
        let items = page["patients"].as_array().unwrap();
        assert_eq!(page["count"], items.len());
        seen.extend(items.iter().map(|p| p["mrn"].clone()));
        match page["next_cursor"].as_str() {
            Some(next) if next.starts_with("v1.") => {
                assert_eq!(page["truncated"], true, "{page}");
                assert!(
                    page["message"]
                        .as_str()
                        .unwrap()
                        .contains("EHR_MCP_RESULT_BUDGET_BYTES")
                );
                cursor = Some(next.to_owned());
            }
            // The store's own cursor: the first page of 100 is complete.
            _ => break,
        }
    }
    assert_eq!(
        seen, expected,
        "the cut pages together are the whole page, in order"
    );
    assert!(cursor.is_some(), "the 8 KiB budget cut the page");
    mcp.shutdown().await;
}
