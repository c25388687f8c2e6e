//! The step-up check on every guarded request: the `actix-web-stepup` crate's `evaluate`
//! (with the intranet's salary requirement, as `requirements::build` makes it) and reading
//! the login's claims, against a baseline measured in the same run — decoding the
//! `AuthState` from its session JSON, which every signed-in request pays anyway. Machines
//! here are shared and noisy, so the ratio is the figure to compare, not the nanoseconds.
//!
//! `cargo bench --bench policy`

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_web_stepup::{AuthState, PAPE_MULTI_FACTOR, Requirement, evaluate};
use criterion::{Criterion, criterion_group};
use fabrikam::config::{StepUpConfig, StepUpProfile};
use fabrikam::intranet::requirements::{self, SalaryAccess};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_800_000_000;

fn requirement() -> Requirement {
    let config = StepUpConfig {
        profile: StepUpProfile::Custom,
        acr_values: None,
        accept_amr: None,
        max_age: Duration::from_secs(600),
        interstitial: false,
    };
    let all = requirements::build(&config).expect("the default settings build");
    all.of::<SalaryAccess>().expect("salary is registered").clone()
}

fn claims(acr: &str, amr: &[&str]) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "sub": "alice", "name": "Alice Ashford", "email": "alice@fabrikam.example",
        "acr": acr, "amr": amr, "auth_time": NOW - 60, "roles": ["hr"],
    }) else {
        unreachable!()
    };
    map
}

fn benches(c: &mut Criterion) {
    let req = requirement();
    let strong =
        AuthState::from_claims(&claims(PAPE_MULTI_FACTOR, &["pwd", "otp", "mfa"]), "roles", NOW).unwrap();
    let weak = AuthState::from_claims(&claims("urn:fabrikam:acr:password", &["pwd"]), "roles", NOW).unwrap();
    let session_json = serde_json::to_string(&strong).unwrap();
    let mfa_claims = claims(PAPE_MULTI_FACTOR, &["pwd", "otp", "mfa"]);

    let mut group = c.benchmark_group("step-up");
    group.bench_function("evaluate: allow", |b| {
        b.iter(|| evaluate(black_box(&strong), black_box(&req), NOW))
    });
    group.bench_function("evaluate: step up", |b| {
        b.iter(|| evaluate(black_box(&weak), black_box(&req), NOW))
    });
    group.bench_function("AuthState::from_claims", |b| {
        b.iter(|| AuthState::from_claims(black_box(&mfa_claims), "roles", NOW))
    });
    group.bench_function("baseline: decode AuthState from session JSON", |b| {
        b.iter(|| serde_json::from_str::<AuthState>(black_box(&session_json)).unwrap())
    });
    group.finish();
}

/// Median time per call over `rounds` batches of `batch` calls.
fn median_ns(rounds: usize, batch: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[rounds / 2]
}

/// The figure to compare across machines: evaluate's cost relative to the session decode,
/// both measured here, interleaved, so machine noise hits both alike.
fn ratio() {
    let req = requirement();
    let strong =
        AuthState::from_claims(&claims(PAPE_MULTI_FACTOR, &["pwd", "otp", "mfa"]), "roles", NOW).unwrap();
    let session_json = serde_json::to_string(&strong).unwrap();
    let (mut evaluate_ns, mut decode_ns) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        evaluate_ns.push(median_ns(21, 20_000, || {
            let _ = black_box(evaluate(black_box(&strong), black_box(&req), NOW));
        }));
        decode_ns.push(median_ns(21, 2_000, || {
            black_box(serde_json::from_str::<AuthState>(black_box(&session_json)).unwrap());
        }));
    }
    evaluate_ns.sort_by(f64::total_cmp);
    decode_ns.sort_by(f64::total_cmp);
    let (e, d) = (evaluate_ns[7], decode_ns[7]);
    println!(
        "\nstep-up check: evaluate {e:.1} ns, session decode (baseline) {d:.1} ns, ratio {:.3}",
        e / d
    );
}

criterion_group!(policy, benches);

fn main() {
    policy();
    Criterion::default().configure_from_args().final_summary();
    ratio();
}
