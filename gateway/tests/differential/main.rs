//! Differential testing of the two HTTP/1.1 engines: the same raw client bytes go to a
//! gateway serving HTTP/1.1 with the lean engine and to one serving it with hyper, both
//! in-process over real sockets, each in front of recording raw-TCP upstreams. For every
//! input both must give the client the same status classes and send the upstreams the same
//! requests (or both refuse). Across every input, on both engines, the invariants that make
//! the gateway safe hold (`check.rs`).
//!
//! The fixed corpus (`corpus.rs`) runs in CI; `mutate.rs` generates variations of it from a
//! seed: `DIFFERENTIAL_CASES=N` (default 300) and `DIFFERENTIAL_SEED=S` pick how many and
//! which; `DIFFERENTIAL_ONLY=text` runs only the cases whose name holds it. Not for: the behaviour of one engine alone (`tests/proxy`).

// Only the issuer is used here; the log capture is for other binaries.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod check;
mod client;
mod corpus;
mod harness;
mod mutate;
mod recorder;

use std::io::Write as _;

use harness::{Pair, Transport};

/// Runs `cases` on both engines and fails with every disagreement and invariant breach,
/// each with its bytes for reproduction.
async fn run_all(label: &str, cases: Vec<corpus::Case>) {
    run_all_over(Transport::Tcp, label, cases).await;
}

/// As [`run_all`], with the protected upstream reached over `transport`.
async fn run_all_over(transport: Transport, label: &str, cases: Vec<corpus::Case>) {
    // `DIFFERENTIAL_ONLY=text`: only the cases whose name holds it (to reproduce one).
    let only = std::env::var("DIFFERENTIAL_ONLY").unwrap_or_default();
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|case| case.name.contains(&only))
        .collect();
    let pair = Pair::start(transport).await;
    let mut failures = Vec::new();
    let mut disagreements = 0;
    // Requests that reached the task API's upstream, on each engine: a run where none did
    // (an upstream nobody could connect to) would otherwise pass with both engines at 502.
    let mut protected = [0, 0];
    for case in &cases {
        let outcome = pair.run(case).await;
        protected[0] += outcome.lean.protected.len();
        protected[1] += outcome.hyper.protected.len();
        let mut problems = check::invariants(&outcome.lean, &pair.lean, case);
        problems.extend(check::invariants(&outcome.hyper, &pair.hyper, case));
        if let Some(difference) = check::compare(&outcome.lean, &outcome.hyper) {
            disagreements += 1;
            problems.push(difference);
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {:?}\n  client bytes: {}\n  upstream answer: {}\n  lean:  {}\n  hyper: {}\n  - {}",
                case.name,
                client::escape(&case.request),
                client::escape(case.reply.bytes()),
                outcome.lean.summary(),
                outcome.hyper.summary(),
                problems.join("\n  - ")
            ));
        }
    }
    // Straight to stderr, past the test harness's capture: CI's log shows the figures even
    // when the test passes.
    let _ = writeln!(
        std::io::stderr(),
        "differential {label}: {} cases on both engines, {disagreements} disagreements, {} failing; \
         requests that reached the task API's upstream (lean, hyper): {protected:?}",
        cases.len(),
        failures.len()
    );
    assert!(
        protected.iter().all(|&reached| reached > 0),
        "no {label} request reached the protected upstream (lean, hyper): {protected:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} {label} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn the_fixed_corpus_gets_the_same_answers_from_both_engines() {
    run_all("corpus", corpus::all()).await;
}

/// The transport changes no byte: the corpus once more with the task API's upstream on a
/// Unix socket (`TASKS_SERVICE_URL=unix:...`), as the Kubernetes pod runs it.
#[tokio::test]
async fn the_fixed_corpus_gets_the_same_answers_over_a_unix_socket_upstream() {
    run_all_over(Transport::Unix, "corpus over a Unix socket", corpus::all()).await;
}

#[tokio::test]
async fn generated_variations_get_the_same_answers_from_both_engines() {
    let count = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(14);
    let _ = writeln!(
        std::io::stderr(),
        "differential generated: seed {seed} (DIFFERENTIAL_SEED), {count} cases (DIFFERENTIAL_CASES)"
    );
    run_all("generated", mutate::cases(seed, count)).await;
}
