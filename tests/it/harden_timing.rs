//! The unknown-vs-known client id timing gap (issue #9, item 9): a wrong secret for an existing client and
//! any secret for a client id that does not exist must cost the same, or the response time enumerates
//! client ids. Measured on `AuthService::authenticate_caller` (the token endpoint's and `authenticate`'s
//! path), interleaved, every sample from its own address so no throttle interferes.
//!
//! A measurement, not a CI gate (timing on a shared machine is noisy): run it with
//! `EHR_MCP_TIMING_SAMPLES=20000 cargo test --release --test it timing_ -- --ignored --nocapture`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ehr_mcp::auth::ClientCredentials;
use ehr_mcp::domain::origin::{Origin, Transport};

use crate::auth_support::{register, service};
use crate::support::TestDb;

struct Summary {
    mean: f64,
    median: f64,
    variance: f64,
    count: usize,
}

/// Mean, median and variance of the samples (µs) with the slowest 1% dropped (scheduler noise).
fn summarise(mut samples: Vec<f64>) -> Summary {
    samples.sort_by(f64::total_cmp);
    samples.truncate(samples.len() * 99 / 100);
    let count = samples.len();
    let mean = samples.iter().sum::<f64>() / count as f64;
    let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (count - 1) as f64;
    Summary {
        mean,
        median: samples[count / 2],
        variance,
        count,
    }
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture (see the module docs)"]
async fn timing_unknown_and_known_client_ids_cost_the_same() {
    let samples: usize = std::env::var("EHR_MCP_TIMING_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let db = TestDb::sqlite().await;
    let known = register(
        &db.store,
        ehr_mcp::domain::access::Role::Doctor,
        "read:patients",
    )
    .await;
    let auth = service(&db.store, None).await;
    let known_id = known.client_id.as_str().to_owned();
    // Same length and shape as a real id, so parsing costs the same.
    let unknown_id = format!("{}x", &known_id[..known_id.len() - 1]);
    let credentials = |client_id: &str| ClientCredentials::Secret {
        client_id: client_id.to_owned(),
        client_secret: "a-wrong-secret-of-forty-three-characters-xx".to_owned(),
    };
    let (known_credentials, unknown_credentials) =
        (credentials(&known_id), credentials(&unknown_id));
    let mut address = 0u32;
    let mut origin = || {
        address += 1;
        let [_, b, c, d] = address.to_be_bytes();
        Origin::new(
            Transport::Http,
            Some(IpAddr::V4(Ipv4Addr::new(10, b, c, d))),
        )
    };
    // Warm-up: caches, the pool, the code paths.
    for _ in 0..200 {
        let _ = auth.authenticate_caller(&known_credentials, origin()).await;
        let _ = auth
            .authenticate_caller(&unknown_credentials, origin())
            .await;
    }
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for n in 0..samples * 2 {
        let (credentials, times) = if n % 2 == 0 {
            (&known_credentials, &mut known_times)
        } else {
            (&unknown_credentials, &mut unknown_times)
        };
        let origin = origin();
        let started = Instant::now();
        let refused = auth.authenticate_caller(credentials, origin).await;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(refused.is_err());
    }
    let (known, unknown) = (summarise(known_times), summarise(unknown_times));
    let z = (unknown.mean - known.mean)
        / (known.variance / known.count as f64 + unknown.variance / unknown.count as f64).sqrt();
    eprintln!(
        "timing over {samples} samples each: known id mean {:.1} µs (median {:.1}), unknown id mean {:.1} µs \
         (median {:.1}); gap {:+.1} µs, z = {z:.2}",
        known.mean,
        known.median,
        unknown.mean,
        unknown.median,
        unknown.mean - known.mean
    );
}
