//! Checks that the files under `deploy/` agree with the binaries they run.
//!
//! The truth about each binary comes from the binary itself: each prints the variables it
//! reads with `--list-env` ([`env_list`]), and the paths they serve are requested
//! from a running instance ([`live`]). The manifests are parsed into [`workload::Workload`]s
//! ([`compose`], [`k8s`], [`dockerfile`]) and [`checks`] compares the two.
//!
//! The crate also ships `http-probe` ([`probe`]), a dependency-free HTTP health probe that
//! the distroless images use for `HEALTHCHECK` and exec probes, having no shell or curl.

pub mod binaries;
pub mod checks;
pub mod compose;
pub mod dockerfile;
pub mod env_list;
pub mod k8s;
pub mod live;
pub mod probe;
pub mod workload;
pub mod yaml;

pub use checks::{check_all, Problem};
pub use env_list::{EnvList, EnvVar};
pub use workload::{Listen, Probe, ProbeTarget, Workload};
