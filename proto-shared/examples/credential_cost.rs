//! What a credential costs per request, v1 against v2, in one run: signing (the gateway's
//! share) and verifying (tasks-service's), for a bodiless GET and a 200-byte POST. v1 comes
//! from `Signer::sign_v1`, the same canonical-string and header code, so the difference is
//! exactly what v2 adds: the body digest, the nonce, the audience, the longer string and the replay set.
//!
//! Run: `cargo run --release -p proto-shared --example credential_cost [rounds]`.
//! Prints the median over `rounds` (default 7) of the mean time per operation.

use std::{hint::black_box, time::Instant};

use http::{HeaderMap, Method};
use proto_shared::{Audience, BodyDigest, KeyRing, Signer, UserId, Verifier};

const KEY: &str = "gateway:gateway-secret-0123456789abcdef-0123";
const OPS: u32 = 200_000;
const NOW: i64 = 1_764_000_000;

/// Mean nanoseconds per call of `op` over `OPS` calls.
fn time(mut op: impl FnMut(u32)) -> f64 {
    let start = Instant::now();
    for i in 0..OPS {
        op(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(OPS)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(7, |r| r.parse().expect("rounds is a number"));
    let ring: KeyRing = KEY.parse().unwrap();
    let signer = Signer::new(&ring, Audience::default());
    let user = UserId::parse("k3Jx9Qz1vBn7aQ2").unwrap();
    let body = br#"{"title":"Write the quarterly report","description":"Numbers from finance, charts from the dashboard, and the summary for the board meeting on Friday."}"#;
    let body = &body[..body.len().min(200)];
    let cases: [(&str, Method, &str, &[u8]); 2] = [
        (
            "GET, no body",
            Method::GET,
            "/api/k3Jx9Qz1vBn7aQ2/tasks?status=all",
            b"",
        ),
        (
            "POST, 200-byte body",
            Method::POST,
            "/api/k3Jx9Qz1vBn7aQ2/tasks",
            body,
        ),
    ];

    println!("credential cost per request, median of {rounds} rounds of {OPS} operations");
    println!(
        "{:<22} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
        "", "sign v1", "sign v2", "v2 - v1", "verify v1", "verify v2", "v2 - v1"
    );
    for (name, method, target, body) in cases {
        let (mut s1, mut s2, mut c1, mut c2) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            s1.push(time(|_| {
                black_box(signer.sign_v1(&method, target, &user, NOW));
            }));
            s2.push(time(|_| {
                // The gateway's whole share: the body's digest, then the signature.
                black_box(signer.sign(&method, target, &user, BodyDigest::of(body), NOW));
            }));
            // Verifying: a fresh verifier per round so its replay memory starts empty, and
            // a pre-signed credential per operation so none is a replay.
            let v1 = Verifier::new(ring.clone(), 30, Audience::default()).accept_v1(true);
            let mut v1_headers = HeaderMap::new();
            signer
                .sign_v1(&method, target, &user, NOW)
                .insert_into(&mut v1_headers);
            c1.push(time(|_| {
                black_box(v1.verify(&method, target, &v1_headers, body, NOW).unwrap());
            }));
            let v2 = Verifier::new(ring.clone(), 30, Audience::default())
                .remembering_since(NOW)
                .replay_capacity(OPS as usize + 1)
                // One user spends every credential here.
                .replay_per_user(OPS as usize + 1);
            let signed: Vec<HeaderMap> = (0..OPS)
                .map(|_| {
                    let mut h = HeaderMap::new();
                    signer
                        .sign(&method, target, &user, BodyDigest::of(body), NOW)
                        .insert_into(&mut h);
                    h
                })
                .collect();
            c2.push(time(|i| {
                black_box(
                    v2.verify(&method, target, &signed[i as usize], body, NOW)
                        .unwrap(),
                );
            }));
        }
        let (s1, s2, c1, c2) = (median(s1), median(s2), median(c1), median(c2));
        println!(
            "{name:<22} {s1:>8.0}ns {s2:>8.0}ns {:>+8.0}ns   {c1:>8.0}ns {c2:>8.0}ns {:>+8.0}ns",
            s2 - s1,
            c2 - c1
        );
    }
}
