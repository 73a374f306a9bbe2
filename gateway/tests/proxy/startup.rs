//! The binary's start-up: a missing required setting is reported in the project's words,
//! naming the variable, as every other configuration error is.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_gateway");

#[test]
fn a_missing_identity_keys_is_reported_by_its_variable_not_as_flag_usage() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("BETTER_AUTH_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "gateway: invalid configuration: IDENTITY_KEYS: required, not set \
         (set the variable, or pass --identity-keys)"
    );
}

#[test]
fn the_log_filter_flag_is_rust_log_as_in_tasks_service() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--rust-log <RUST_LOG>"), "{help}");
}
