//! Config parsing and validation, without touching the process environment's variables.

use clap::CommandFactory;

use super::*;

const KEYS: &str = "gw:0123456789abcdef0123456789abcdef";

fn parse(args: &[&str]) -> Config {
    let mut argv = vec!["gateway", "--identity-keys", KEYS];
    argv.extend_from_slice(args);
    Config::try_parse_from(argv).expect("flags parse")
}

#[test]
fn better_auth_url_alone_configures_tokens() {
    let settings = parse(&["--better-auth-url", "https://auth.local:3000/"])
        .validate()
        .unwrap();
    assert_eq!(
        settings.auth.jwks.url,
        "https://auth.local:3000/api/auth/jwks"
    );
    assert_eq!(settings.auth.issuer, "https://auth.local:3000");
    assert_eq!(settings.auth.audiences, ["https://auth.local:3000"]);
    assert_eq!(settings.auth.algorithms.len(), 5);
}

#[test]
fn each_token_setting_can_be_set_on_its_own() {
    let settings = parse(&[
        "--better-auth-url=https://auth.local",
        "--jwt-audience=api,web",
        "--jwt-algorithms=ES256",
        "--jwks-url=https://keys.local/jwks",
    ])
    .validate()
    .unwrap();
    assert_eq!(settings.auth.jwks.url, "https://keys.local/jwks");
    assert_eq!(settings.auth.audiences, ["api", "web"]);
    assert_eq!(settings.auth.algorithms, [Algorithm::Es256]);
}

#[test]
fn refusals_name_the_variable_to_fix() {
    let cases: [(&[&str], &str); 13] = [
        (&[], "JWKS_URL"),
        (&["--jwks-url=https://k", "--jwt-issuer=i"], "JWT_AUDIENCE"),
        (
            &["--better-auth-url=https://a", "--jwt-algorithms=HS256"],
            "JWT_ALGORITHMS",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--tasks-service-url=https://t",
            ],
            "TASKS_SERVICE_URL",
        ),
        (
            &["--better-auth-url=https://a", "--public-routes=/x"],
            "PUBLIC_ROUTES",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--cors-allowed-origins=app.example",
            ],
            "CORS_ALLOWED_ORIGINS",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--trusted-proxies=10.0.0.0/8,ingress.internal",
            ],
            "TRUSTED_PROXIES",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--public-routes=/api=http://x",
            ],
            "PUBLIC_ROUTES",
        ),
        (
            &["--better-auth-url=http://auth.internal"],
            "BETTER_AUTH_URL",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--jwks-url=http://auth.internal/jwks",
            ],
            "JWKS_URL",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--jwt-issuer=http://auth.internal",
            ],
            "JWT_ISSUER",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--jwks-unknown-kid-cooldown-secs=0",
            ],
            "JWKS_UNKNOWN_KID_COOLDOWN_SECS",
        ),
        (
            &["--better-auth-url=https://a", "--shutdown-delay-secs=301"],
            "SHUTDOWN_DELAY_SECS",
        ),
    ];
    for (args, variable) in cases {
        let error = parse(args).validate().unwrap_err();
        assert_eq!(error.variable, variable, "{args:?}: {error}");
        assert!(error.to_string().starts_with(variable));
    }
}

#[test]
fn a_public_route_over_the_protected_api_is_refused_by_name() {
    for route in ["/", "/api", "/api/"] {
        let error = parse(&[
            "--better-auth-url=https://a",
            &format!("--public-routes=/api/auth/=http://x,{route}=http://x"),
        ])
        .validate()
        .unwrap_err();
        assert_eq!(error.variable, "PUBLIC_ROUTES");
        assert!(error.to_string().contains(&format!("{route:?}")), "{error}");
    }
}

#[test]
fn plain_http_to_the_issuer_needs_loopback_or_the_opt_in() {
    let loopback = parse(&["--better-auth-url=http://127.0.0.1:3000"]).validate();
    assert!(loopback.unwrap().insecure_http.is_empty());
    let settings = parse(&[
        "--better-auth-url=http://better-auth:3000",
        "--jwks-allow-insecure-http=true",
    ])
    .validate()
    .unwrap();
    assert_eq!(settings.insecure_http, ["BETTER_AUTH_URL"]);
    let settings = parse(&[
        "--better-auth-url=https://a",
        "--jwks-url=http://keys.internal/jwks",
        "--jwks-allow-insecure-http=true",
    ])
    .validate()
    .unwrap();
    assert_eq!(settings.insecure_http, ["JWKS_URL"]);
}

#[test]
fn the_admin_listener_must_not_share_the_public_address() {
    let error = parse(&[
        "--better-auth-url=https://a",
        "--listen=127.0.0.1:8080",
        "--admin-listen=127.0.0.1:8080",
    ])
    .validate()
    .unwrap_err();
    assert_eq!(error.variable, "ADMIN_LISTEN");
}

#[test]
fn a_bad_key_ring_is_refused_without_echoing_the_secret() {
    let config = Config::try_parse_from([
        "gateway",
        "--identity-keys=gw:too-short-secret",
        "--better-auth-url=https://a",
    ])
    .unwrap();
    let error = config.validate().unwrap_err();
    assert_eq!(error.variable, "IDENTITY_KEYS");
    assert!(!error.to_string().contains("too-short-secret"), "{error}");
}

#[test]
fn the_env_listing_comes_from_clap_and_marks_identity_keys_required() {
    let listing = env_listing();
    assert!(listing.contains("IDENTITY_KEYS\trequired\t\n"), "{listing}");
    assert!(
        listing.contains("GATEWAY_LISTEN\toptional\t127.0.0.1:8080\n"),
        "{listing}"
    );
    assert!(listing.contains("JWT_ALGORITHMS\toptional\tEdDSA,ES256,RS256,PS256,ES512\n"));
    assert!(listing.contains("RUST_LOG\toptional\tinfo\n"));
    assert!(listing.contains("IDENTITY_AUDIENCE\toptional\ttasks-service\n"));
    assert!(listing.contains("IDENTITY_PROBE_SECS\toptional\t10\n"));
    assert!(listing.contains("REVOCATION_DATABASE_URL\toptional\t\n"));
    assert!(listing.contains("REVOCATION_STALE_SECS\toptional\t30\n"));
    assert!(listing.contains("REVOCATION_REQUIRE_SID\toptional\ttrue\n"));
    assert!(listing.contains("REVOCATION_DATABASE_CA_FILE\toptional\t\n"));
    assert!(listing.contains("SHUTDOWN_DELAY_SECS\toptional\t0\n"));
    assert!(listing.contains("JWKS_MAX_KEYS\toptional\t1024\n"));
    assert_eq!(listing.lines().count(), 41, "{listing}");
    assert!(listing.contains("TRUSTED_PROXIES\toptional\t\n"));
    assert!(listing.contains("HTTP1_ENGINE\toptional\tlean\n"));
    assert!(listing.contains("RUNTIME_LAYOUT\toptional\tbalanced\n"));
    assert!(listing.lines().all(|line| line.split('\t').count() == 3));
}

#[test]
fn a_revocation_database_is_optional_and_checked_without_echoing_it() {
    const BASE: &[&str] = &["--better-auth-url", "https://auth.local"];
    let settings = parse(BASE).validate().unwrap();
    assert!(settings.auth.revocation.is_none(), "off unless configured");
    let with = |url: &str| {
        let mut config = parse(BASE);
        config.revocation_database_url = Some(Secret(url.to_owned()));
        config.validate()
    };
    let on = with("postgres://gateway:pw@auth-db:5432/better_auth?sslmode=disable").unwrap();
    assert!(!format!("{on:?}").contains("pw@"), "{on:?}");
    let revocation = on.auth.revocation.expect("on");
    assert_eq!(revocation.window, std::time::Duration::from_secs(900 + 30));
    assert_eq!(revocation.stale_after, std::time::Duration::from_secs(30));
    for (url, problem) in [
        ("", "is empty; unset it to run without revocation"),
        ("   ", "is empty; unset it to run without revocation"),
        ("not a url at all ::", "not a valid PostgreSQL URL"),
        (
            "postgres://gateway:pw@auth-db/x?sslmode=bogus",
            "not a valid PostgreSQL URL",
        ),
        (
            "postgres://gateway:pw@auth-db/x?sslmode=prefer",
            "would fall back to plain text",
        ),
        (
            "postgres://gateway:p@w@auth-db/x",
            "percent-encode the password",
        ),
        // To another machine the URL says whether it speaks TLS.
        ("postgres://gateway:pw@auth-db/x", "names no sslmode"),
    ] {
        let error = with(url).unwrap_err();
        assert_eq!(error.variable, "REVOCATION_DATABASE_URL");
        assert!(error.to_string().contains(problem), "{error}");
        assert!(!error.to_string().contains("pw@"), "{error}");
        assert!(!error.to_string().contains("auth-db"), "{error}");
    }
}

#[test]
fn the_revocation_feed_speaks_tls_when_its_url_asks_and_a_ca_file_needs_tls() {
    use proto_shared::postgres_tls::Tls;
    let with = |url: &str, ca_file: Option<&str>| {
        let mut config = parse(&["--better-auth-url", "https://auth.local"]);
        config.revocation_database_url = Some(Secret(url.to_owned()));
        config.revocation_database_ca_file = ca_file.map(Into::into);
        config.validate()
    };
    for (url, tls) in [
        (
            "postgres://gateway:pw@ep-x.neon.tech/better_auth?sslmode=require",
            true,
        ),
        (
            "postgres://gateway:pw@ep-x.neon.tech/better_auth?sslmode=verify-full",
            true,
        ),
        (
            "postgres://gateway:pw@auth-db/better_auth?sslmode=disable",
            false,
        ),
    ] {
        let revocation = with(url, None).unwrap().auth.revocation.expect("on");
        assert_eq!(matches!(revocation.tls, Tls::Rustls(_)), tls, "{url}");
    }
    let error = with(
        "postgres://gateway:pw@auth-db/x?sslmode=disable",
        Some("/etc/ssl/certs/ca.pem"),
    )
    .unwrap_err();
    assert_eq!(error.variable, "REVOCATION_DATABASE_CA_FILE", "{error}");
    assert!(
        error.to_string().contains("does not ask for TLS"),
        "{error}"
    );
    let error = with(
        "postgres://gateway:pw@auth-db/x?sslmode=require",
        Some("/no/such/ca.pem"),
    )
    .unwrap_err();
    assert_eq!(error.variable, "REVOCATION_DATABASE_CA_FILE", "{error}");
    assert!(error.to_string().contains("cannot read"), "{error}");
}

#[test]
fn max_connections_defaults_from_the_file_limit_and_is_checked_against_it() {
    // Half of what the reserve leaves: a client socket and an upstream socket each.
    assert_eq!(max_connections(None, Some(20_000), None).unwrap(), 9_872);
    assert_eq!(max_connections(None, Some(100), None).unwrap(), 1);
    assert_eq!(max_connections(Some(3), Some(20_000), None).unwrap(), 3);
    // A container's: a million files, 256 MiB of memory. The memory bounds the default, not a
    // value the operator sets.
    let mib = 1024 * 1024;
    // (256 - 64) MiB at 64 KiB each.
    assert_eq!(
        max_connections(None, Some(1_048_576), Some(256 * mib)).unwrap(),
        3_072
    );
    assert_eq!(max_connections(None, None, Some(256 * mib)).unwrap(), 3_072);
    // A limit under twice the reserve keeps half of it.
    assert_eq!(max_connections(None, None, Some(64 * mib)).unwrap(), 512);
    assert_eq!(
        max_connections(None, Some(20_000), Some(64 * 1024 * mib)).unwrap(),
        9_872
    );
    assert_eq!(
        max_connections(Some(50_000), Some(1_048_576), Some(256 * mib)).unwrap(),
        50_000
    );
    assert_eq!(max_connections(None, Some(1_048_576), Some(1)).unwrap(), 1);
    for (set, problem) in [(0, "at least 1"), (20_001, "open-file limit (20000)")] {
        let error = max_connections(Some(set), Some(20_000), None).unwrap_err();
        assert_eq!(error.variable, "MAX_CONNECTIONS");
        assert!(error.to_string().contains(problem), "{error}");
    }
    let settings = parse(&["--better-auth-url", "https://auth.local"]).validate();
    assert!(settings.unwrap().limits.max_connections >= 1);
}

#[test]
fn the_leeway_is_at_most_300_seconds() {
    let with = |secs: u64| {
        let mut config = parse(&["--better-auth-url", "https://auth.local"]);
        config.jwt_leeway_secs = secs;
        // With revocation on, the leeway is also added to the token lifetime.
        config.revocation_database_url =
            Some("postgres://gateway@auth-db/x?sslmode=disable".into());
        config.validate()
    };
    assert_eq!(with(0).unwrap().auth.leeway, Duration::ZERO);
    let settings = with(300).unwrap();
    assert_eq!(settings.auth.leeway, Duration::from_secs(300));
    let window = settings.auth.revocation.expect("on").window;
    assert_eq!(window, Duration::from_secs(900 + 300));
    for secs in [301, u64::MAX] {
        let error = with(secs).unwrap_err();
        assert_eq!(error.variable, "JWT_LEEWAY_SECS", "{secs}: {error}");
        assert!(error.to_string().contains("at most 300"), "{error}");
    }
}

#[test]
fn the_key_count_bound_sizes_the_response_bound_and_is_itself_bounded() {
    let with = |keys: &str| {
        parse(&[
            "--better-auth-url=https://auth.local",
            "--jwks-max-keys",
            keys,
        ])
        .validate()
    };
    let defaults = parse(&["--better-auth-url=https://auth.local"])
        .validate()
        .unwrap();
    assert_eq!(defaults.auth.jwks.max_keys, 1024);
    assert_eq!(defaults.auth.jwks.max_response_bytes, 1024 * 1024);
    let few = with("8").unwrap();
    assert_eq!(few.auth.jwks.max_keys, 8);
    assert_eq!(few.auth.jwks.max_response_bytes, 64 * 1024);
    assert_eq!(
        with("4096").unwrap().auth.jwks.max_response_bytes,
        4 * 1024 * 1024
    );
    for keys in ["0", "100001"] {
        let error = with(keys).unwrap_err();
        assert_eq!(error.variable, "JWKS_MAX_KEYS", "{keys}: {error}");
    }
}

#[test]
fn tokens_without_a_session_are_refused_unless_the_operator_says_otherwise() {
    let with = |extra: &[&str]| {
        let args = [
            &["--better-auth-url", "https://auth.local"][..],
            &[
                "--revocation-database-url",
                "postgres://gateway@auth-db/x?sslmode=disable",
            ],
            extra,
        ]
        .concat();
        let revocation = parse(&args).validate().unwrap().auth.revocation;
        revocation.expect("on").require_session
    };
    assert!(with(&[]));
    assert!(!with(&["--revocation-require-sid", "false"]));
    assert!(with(&["--revocation-require-sid", "true"]));
}

/// `revocation.sql` prunes its rows, and skips sessions long expired, at a horizon that every
/// gateway's window must fit in: past it, a gateway (re)started would load nothing for a
/// revocation whose tokens it still accepts.
#[test]
fn the_longest_revocation_window_fits_in_what_revocation_sql_keeps() {
    const HORIZON_DAYS: u64 = 33;
    let sql = include_str!("../../../deploy/better-auth/revocation.sql");
    let horizon = format!("interval '{HORIZON_DAYS} days'");
    assert_eq!(
        sql.matches(&horizon).count(),
        2,
        "the prune and the session trigger"
    );
    assert!(
        !sql.contains("interval '1 day'"),
        "a shorter horizon left in"
    );
    let longest = MAX_TOKEN_LIFETIME_SECS + 3 * MAX_LEEWAY_SECS;
    assert!(longest < HORIZON_DAYS * 86_400);
}

#[test]
fn a_token_lifetime_too_large_to_add_the_leeway_to_is_refused_not_a_panic() {
    let mut config = parse(&["--better-auth-url", "https://auth.local"]);
    config.revocation_database_url = Some("postgres://gateway@auth-db/x?sslmode=disable".into());
    config.revocation_token_lifetime_secs = u64::MAX;
    let error = config.validate().unwrap_err();
    assert_eq!(error.variable, "REVOCATION_TOKEN_LIFETIME_SECS", "{error}");
}

#[test]
fn credentials_in_a_refused_url_are_not_echoed() {
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--better-auth-url=https://a",
                "--jwks-url=http://u:hunter2@keys.internal/jwks",
            ],
            "JWKS_URL",
        ),
        (
            &["--better-auth-url=http://u:hunter2@auth.internal"],
            "BETTER_AUTH_URL",
        ),
        (
            &[
                "--better-auth-url=https://a",
                "--jwt-issuer=http://u:hunter2@auth.internal",
            ],
            "JWT_ISSUER",
        ),
        // A password holding '/' ends the authority early for `http::Uri` (port "hu"),
        // and fails reqwest's parser: refused at start, masked all the same.
        (
            &[
                "--better-auth-url=https://a",
                "--jwks-url=https://gw:hu/nter2@keys.internal/jwks",
            ],
            "JWKS_URL",
        ),
        (
            &["--better-auth-url=https://gw:hunter2@auth.internal"],
            "BETTER_AUTH_URL",
        ),
        // Not a URL at all: refused as such, still without the password.
        (
            &[
                "--better-auth-url=https://a",
                "--jwks-url=u:hunter2@keys.internal/jwks",
            ],
            "JWKS_URL",
        ),
    ];
    for (args, variable) in cases {
        let error = parse(args).validate().unwrap_err();
        assert_eq!(error.variable, variable, "{args:?}: {error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!error.to_string().contains("nter2"), "{error}");
        assert!(error.to_string().contains("***@"), "{error}");
    }
    // The key set may need a login; it stays out of what start-up may print.
    let settings = parse(&[
        "--better-auth-url=https://auth.example",
        "--jwks-url=https://gw:hunter2@auth.example/api/auth/jwks",
    ])
    .validate()
    .unwrap();
    assert!(!format!("{settings:?}").contains("hunter2"));
}

#[test]
fn an_address_written_two_ways_is_one_host() {
    for jwks in [
        "http://[0:0:0:0:0:0:0:1]:3000/api/auth/jwks",
        "http://[::ffff:127.0.0.1]:3000/api/auth/jwks",
        "https://AUTH.example./api/auth/jwks",
    ] {
        let config = parse(&["--better-auth-url=https://a", &format!("--jwks-url={jwks}")]);
        assert!(config.validate().is_ok(), "{jwks}");
    }
}

#[test]
fn help_shows_no_current_value_of_a_setting_that_may_hold_a_password() {
    // What `--help` prints for a variable set in the environment (clap's `env` feature):
    // `[env: JWKS_URL=...]` unless the setting hides its value.
    let command = Config::command();
    for variable in [
        "JWKS_URL",
        "BETTER_AUTH_URL",
        "TASKS_SERVICE_URL",
        "PUBLIC_ROUTES",
        "IDENTITY_KEYS",
        "REVOCATION_DATABASE_URL",
    ] {
        let argument = command
            .get_arguments()
            .find(|arg| arg.get_env().is_some_and(|env| env == variable))
            .unwrap_or_else(|| panic!("{variable} is a setting"));
        assert!(argument.is_hide_env_values_set(), "{variable}");
    }
}

#[test]
fn durations_and_sizes_past_their_bounds_are_refused_by_name_not_a_panic_later() {
    let huge = u64::MAX.to_string();
    let day_and_a_second = (MAX_DURATION_SECS + 1).to_string();
    let durations = [
        "HEADER_READ_TIMEOUT_SECS",
        "IDLE_TIMEOUT_SECS",
        "UPSTREAM_TIMEOUT_SECS",
        "JWKS_REFRESH_SECS",
        "JWKS_UNKNOWN_KID_COOLDOWN_SECS",
        "SHUTDOWN_GRACE_SECS",
        "REVOCATION_STALE_SECS",
        "IDENTITY_PROBE_SECS",
    ]
    .map(|variable| (variable, day_and_a_second.clone()));
    let sizes = [
        ("MAX_HEADER_BYTES", (MAX_HEADER_BYTES + 1).to_string()),
        ("MAX_BODY_BYTES", (MAX_BODY_BYTES + 1).to_string()),
        (
            "REVOCATION_TOKEN_LIFETIME_SECS",
            (MAX_TOKEN_LIFETIME_SECS + 1).to_string(),
        ),
    ];
    for (variable, over) in durations.into_iter().chain(sizes) {
        for value in [&huge, &over] {
            let flag = format!(
                "--{}={value}",
                variable.to_ascii_lowercase().replace('_', "-")
            );
            let mut config = parse(&["--better-auth-url=https://auth.local", &flag]);
            config.revocation_database_url =
                Some("postgres://gateway@auth-db/x?sslmode=disable".into());
            let error = config.validate().unwrap_err();
            assert_eq!(error.variable, variable, "{value}: {error}");
        }
    }
    // The largest values allowed still start.
    let mut config = parse(&[
        "--better-auth-url=https://auth.local",
        "--upstream-timeout-secs=86400",
        "--max-header-bytes=1048576",
        "--max-body-bytes=67108864",
        // A week-long token (Better Auth's `expirationTime: "7d"`) with revocation on.
        "--revocation-token-lifetime-secs=604800",
    ]);
    config.revocation_database_url = Some("postgres://gateway@auth-db/x?sslmode=disable".into());
    assert!(config.validate().is_ok());
}

#[test]
fn an_upstream_url_with_a_user_or_password_is_refused_without_echoing_it() {
    for (args, variable) in [
        (
            &["--tasks-service-url=http://svc:hunter2@127.0.0.1:8081"][..],
            "TASKS_SERVICE_URL",
        ),
        (
            &["--tasks-service-url=http://svc:hunter2@127.0.0.1:8081/x"][..],
            "TASKS_SERVICE_URL",
        ),
        // '/' in the password: the authority a parser reads ends before the '@'.
        (
            &["--tasks-service-url=http://svc:hun/ter2@127.0.0.1:8081"][..],
            "TASKS_SERVICE_URL",
        ),
        (
            &["--public-routes=/api/auth/=http://ba:hunter2@127.0.0.1:3000"][..],
            "PUBLIC_ROUTES",
        ),
    ] {
        let mut args = args.to_vec();
        args.push("--better-auth-url=https://auth.local");
        let error = parse(&args).validate().unwrap_err();
        assert_eq!(error.variable, variable, "{args:?}: {error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!error.to_string().contains("ter2"), "{error}");
        assert!(error.to_string().contains("user or password"), "{error}");
    }
}

#[test]
fn a_gateway_runs_a_worker_per_cpu_balanced_unless_told() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let defaulted = parse(&["--better-auth-url", "http://127.0.0.1:3000"])
        .validate()
        .unwrap();
    assert_eq!(defaulted.worker_threads, cpus);
    assert_eq!(defaulted.runtime_layout, RuntimeLayout::Balanced);
    let set = parse(&[
        "--better-auth-url",
        "http://127.0.0.1:3000",
        "--worker-threads",
        "3",
        "--runtime-layout",
        "shared",
    ])
    .validate()
    .unwrap();
    assert_eq!(set.worker_threads, 3);
    assert_eq!(set.runtime_layout, RuntimeLayout::Shared);
}
