//! TLS to PostgreSQL for real: a private cluster serving a certificate from a throw-away CA,
//! trusted through `DATABASE_CA_FILE`, refused without it, and the CA file refused without TLS.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tasks_service::{db::TrustedCas, Application, Config};

use crate::{
    cluster::PrivateCluster,
    helpers::{admin_client, create_database, spawn_app_on, test_settings, GATEWAY_KEY},
};

/// The service's URL for `db_name` on `cluster`: by host name, so the name is verified too.
fn tls_url(cluster: &PrivateCluster, db_name: &str, sslmode: &str) -> String {
    format!(
        "postgres://postgres@localhost:{}/{db_name}?sslmode={sslmode}",
        cluster.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_works_over_tls_to_a_server_signed_by_the_configured_ca() {
    let cluster = PrivateCluster::start_with_tls();
    let cas = TrustedCas::from_pem_file(&cluster.ca_file()).expect("the test CA loads");
    let app = spawn_app_on(
        &cluster.admin_url(),
        |db_name| tls_url(&cluster, db_name, "require"),
        |settings| settings.db.url = settings.db.url.clone().trusting(cas),
    )
    .await;
    let alice = app.user("alice");
    let id = alice.create_titled("over TLS").await;
    let listed = alice.list("").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body[0]["id"], json!(id));
    assert_eq!(listed.body[0]["title"], "over TLS");

    // Seen from the server: every connection of the service to its database is TLS. The
    // admin connection (plain TCP) shows the column tells the two apart.
    let admin = admin_client(&cluster.admin_url()).await;
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
            &[&app.db_name],
        )
        .await
        .unwrap();
    let (tls, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(tls >= 1, "no TLS connection from the service");
    assert_eq!(plain, 0, "the service has a connection without TLS");
    let admin_ssl: bool = admin
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!admin_ssl, "the plain admin connection is reported as TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_file_a_privately_signed_server_is_refused_at_start() {
    let cluster = PrivateCluster::start_with_tls();
    let db_name = create_database(&cluster.admin_url()).await;
    let settings = test_settings(&tls_url(&cluster, &db_name, "require"));
    let started = tokio::time::timeout(Duration::from_secs(20), Application::build(settings))
        .await
        .expect("start-up ends within 20 s, never hangs");
    let error = started.expect_err("the webpki roots do not trust the test CA");
    let message = error.to_string();
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
}

#[tokio::test]
async fn a_ca_file_without_a_tls_sslmode_is_refused_at_start_naming_both_variables() {
    let cluster = PrivateCluster::start_with_tls();
    let ca_file = cluster.ca_file();
    let cas = TrustedCas::from_pem_file(&ca_file).expect("the test CA loads");
    // Why the configuration with `url` and the CA file is refused.
    let refusal = |url: &str| {
        Config::try_parse_from([
            "tasks-service",
            "--identity-keys",
            GATEWAY_KEY,
            "--database-url",
            url,
            "--database-ca-file",
            ca_file.to_str().unwrap(),
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string()
    };
    // `prefer` is refused before the CA file is looked at: it would fall back to plain text.
    let message = refusal(&tls_url(&cluster, "postgres", "prefer"));
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(message.contains("sslmode=prefer"), "{message}");
    for url in [
        tls_url(&cluster, "postgres", "disable"),
        format!("postgres://postgres@localhost:{}/postgres", cluster.port()),
    ] {
        let message = refusal(&url);
        assert!(message.starts_with("DATABASE_CA_FILE:"), "{url}: {message}");
        assert!(message.contains("DATABASE_URL"), "{url}: {message}");

        // Settings built by hand skip that check; start-up refuses them too.
        let mut settings = test_settings(&url);
        settings.db.url = settings.db.url.clone().trusting(cas.clone());
        let message = Application::build(settings).await.unwrap_err().to_string();
        assert!(message.contains("DATABASE_CA_FILE"), "{url}: {message}");
        assert!(message.contains("DATABASE_URL"), "{url}: {message}");
    }
}
