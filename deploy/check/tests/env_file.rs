//! The compose stack's secrets: the template holds none that works, `new-env.sh` fills each
//! placeholder with a fresh secret of its own, and `postgres/roles.sh` refuses a placeholder
//! before it touches a database.

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The variables that hold secrets in `deploy/.env.example`.
const SECRETS: [&str; 6] = [
    "POSTGRES_PASSWORD",
    "TASKS_DB_PASSWORD",
    "BETTER_AUTH_DB_PASSWORD",
    "REVOCATION_DB_PASSWORD",
    "IDENTITY_KEYS",
    "BETTER_AUTH_SECRET",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deploy/check is inside deploy/")
        .to_path_buf()
}

/// `NAME=value` lines, comments skipped.
fn values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value_of<'a>(values: &'a [(String, String)], name: &str) -> &'a str {
    values
        .iter()
        .find_map(|(k, v)| (k == name).then_some(v.as_str()))
        .unwrap_or_else(|| panic!("{name} is not set"))
}

#[test]
fn the_template_holds_placeholders_only() {
    let template = std::fs::read_to_string(deploy_dir().join(".env.example")).unwrap();
    let values = values(&template);
    for name in SECRETS {
        assert!(
            value_of(&values, name).contains("REPLACE-ME"),
            "{name} in .env.example must be the REPLACE-ME placeholder, not a usable secret"
        );
    }
}

#[test]
fn new_env_fills_every_placeholder_with_a_secret_of_its_own_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!("new-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(".env");
    let _ = std::fs::remove_file(&file);
    let run = || {
        Command::new(deploy_dir().join("new-env.sh"))
            .arg(&file)
            .output()
            .expect("run new-env.sh")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner alone");

    let written = std::fs::read_to_string(&file).unwrap();
    let values = values(&written);
    assert!(
        values.iter().all(|(_, v)| !v.contains("REPLACE-ME")),
        "{written}"
    );
    let mut seen = BTreeSet::new();
    for name in SECRETS {
        let value = value_of(&values, name);
        // IDENTITY_KEYS keeps the template's key id before its secret.
        let secret = value.rsplit(':').next().unwrap();
        assert_eq!(secret.len(), 48, "{name}");
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}");
        assert!(
            seen.insert(secret.to_owned()),
            "{name} repeats another secret"
        );
    }
    assert!(value_of(&values, "IDENTITY_KEYS").starts_with("ci:"));
    assert_eq!(
        value_of(&values, "JWT_ALG"),
        "EdDSA",
        "other values are kept"
    );

    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("keeping it"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn roles_sh_refuses_a_placeholder_password_before_it_touches_a_database() {
    // No psql on PATH: a script that went on would fail with "not found", not this message.
    let empty = std::env::temp_dir().join(format!("no-psql-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let run = |postgres_password: &str| {
        Command::new("/bin/sh")
            .arg(deploy_dir().join("postgres/roles.sh"))
            .env_clear()
            .env("PATH", &empty)
            .env("POSTGRES_PASSWORD", postgres_password)
            .env("TASKS_DB_PASSWORD", "REPLACE-ME")
            .env("BETTER_AUTH_DB_PASSWORD", "a-password-long-enough-000")
            .env("REVOCATION_DB_PASSWORD", "a-password-long-enough-111")
            .output()
            .expect("run roles.sh")
    };
    for (postgres_password, named) in [
        ("REPLACE-ME", "POSTGRES_PASSWORD"),
        ("a-password-long-enough-222", "TASKS_DB_PASSWORD"),
    ] {
        let out = run(postgres_password);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{named} must be set to a random password")),
            "{stderr}"
        );
        assert!(!stderr.contains("REPLACE-ME"), "no value echoed: {stderr}");
    }
    std::fs::remove_dir_all(&empty).unwrap();
}
