//! Each rule catches the mistake it exists for. The env lists here are written in the
//! `--list-env` format and parsed by the same code as the binaries' real output; the
//! manifests are small variations of the committed ones.

use std::collections::BTreeMap;

use deploy_check::{
    checks::{check_all, Manifests},
    compose, dockerfile,
    k8s::Cluster,
    yaml, EnvList,
};

fn lists() -> BTreeMap<String, EnvList> {
    let parse = |text: &str| EnvList::parse(text).unwrap();
    BTreeMap::from([
        ("gateway".into(), parse("GATEWAY_LISTEN\toptional\t127.0.0.1:8080\nADMIN_LISTEN\toptional\t127.0.0.1:9090\nTASKS_SERVICE_URL\toptional\thttp://127.0.0.1:8081\nIDENTITY_KEYS\trequired\t\nLOG_FORMAT\toptional\tpretty\nRUST_LOG\toptional\tinfo\nSHUTDOWN_GRACE_SECS\toptional\t30\nSHUTDOWN_DELAY_SECS\toptional\t0\n")),
        ("tasks-service".into(), parse("TASKS_LISTEN\toptional\t127.0.0.1:8081\nTASKS_SOCKET\toptional\t\nDATABASE_URL\toptional\tpostgres://x\nIDENTITY_KEYS\trequired\t\nRUST_LOG\toptional\tinfo\n")),
    ])
}

const COMPOSE: &str = r#"
services:
  tasks-service:
    build: { context: .., dockerfile: deploy/docker/Dockerfile.tasks-service }
    environment:
      TASKS_LISTEN: 0.0.0.0:8081
      IDENTITY_KEYS: ${IDENTITY_KEYS:?set it}
    healthcheck:
      test: ["CMD", "/usr/local/bin/http-probe", "http://127.0.0.1:8081/readyz"]
  gateway:
    build: { context: .., dockerfile: deploy/docker/Dockerfile.gateway }
    environment:
      GATEWAY_LISTEN: 0.0.0.0:8080
      TASKS_SERVICE_URL: http://tasks-service:8081
      IDENTITY_KEYS: ${IDENTITY_KEYS:?set it}
    ports: ["${GATEWAY_PORT:-8080}:8080"]
    depends_on:
      tasks-service: { condition: service_healthy }
    healthcheck:
      test: ["CMD", "/usr/local/bin/http-probe", "http://127.0.0.1:8080/readyz"]
"#;

fn problems_for_compose(text: &str) -> Vec<String> {
    let docs = yaml::documents("compose.yaml", text).unwrap();
    let manifests = Manifests {
        compose: compose::parse("compose.yaml", &docs[0]).unwrap(),
        ..Default::default()
    };
    check_all(&manifests, &lists())
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn problems_for_k8s(text: &str) -> Vec<String> {
    let mut cluster = Cluster::default();
    let docs = yaml::documents("k8s.yaml", text).unwrap();
    cluster
        .add("k8s.yaml", std::path::Path::new("."), &docs)
        .unwrap();
    let manifests = Manifests {
        cluster,
        ..Default::default()
    };
    check_all(&manifests, &lists())
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_one(problems: &[String], needle: &str) {
    assert!(
        problems.len() == 1 && problems[0].contains(needle),
        "expected exactly one problem containing {needle:?}, got {problems:#?}"
    );
}

#[test]
fn the_sample_compose_file_is_clean() {
    assert_eq!(problems_for_compose(COMPOSE), Vec::<String>::new());
}

#[test]
fn a_variable_the_binary_does_not_read_is_reported() {
    let text = COMPOSE.replace(
        "      GATEWAY_LISTEN: 0.0.0.0:8080",
        "      GATEWAY_LISTEN: 0.0.0.0:8080\n      GATEWAY_LISTEN_ADDR: x",
    );
    assert_one(
        &problems_for_compose(&text),
        "sets GATEWAY_LISTEN_ADDR, which gateway does not read",
    );
}

#[test]
fn a_missing_required_variable_is_reported() {
    let text = COMPOSE.replacen("      IDENTITY_KEYS: ${IDENTITY_KEYS:?set it}\n", "", 1);
    assert_one(
        &problems_for_compose(&text),
        "does not set IDENTITY_KEYS, which tasks-service requires",
    );
}

#[test]
fn publishing_a_port_the_binary_does_not_listen_on_is_reported() {
    let text = COMPOSE.replace("\"${GATEWAY_PORT:-8080}:8080\"", "\"8080:9091\"");
    assert_one(
        &problems_for_compose(&text),
        "declares container port 9091, but gateway listens on 0.0.0.0:8080",
    );
}

#[test]
fn publishing_the_admin_listener_on_the_host_is_reported() {
    let text = COMPOSE
        .replace(
            "GATEWAY_LISTEN: 0.0.0.0:8080",
            "GATEWAY_LISTEN: 0.0.0.0:8080\n      ADMIN_LISTEN: 0.0.0.0:9090",
        )
        .replace(
            "ports: [\"${GATEWAY_PORT:-8080}:8080\"]",
            "ports: [\"${GATEWAY_PORT:-8080}:8080\", \"9090:9090\"]",
        );
    assert_one(
        &problems_for_compose(&text),
        "publishes port 9090 of the admin listener (ADMIN_LISTEN): /metrics would be public",
    );
}

#[test]
fn a_healthcheck_on_the_wrong_port_is_reported() {
    let text = COMPOSE.replace(
        "http://127.0.0.1:8081/readyz",
        "http://127.0.0.1:8080/readyz",
    );
    assert_one(
        &problems_for_compose(&text),
        "healthcheck requests port 8080, but the binary listens on 8081",
    );
}

#[test]
fn listening_on_loopback_in_compose_is_reported() {
    let text = COMPOSE.replace("TASKS_LISTEN: 0.0.0.0:8081", "TASKS_LISTEN: 127.0.0.1:8081");
    assert_one(
        &problems_for_compose(&text),
        "which other containers cannot reach",
    );
}

#[test]
fn publishing_tasks_service_on_the_host_is_reported() {
    let build = "    build: { context: .., dockerfile: deploy/docker/Dockerfile.tasks-service }";
    let text = COMPOSE.replace(build, &format!("{build}\n    ports: [\"8081:8081\"]"));
    assert_one(&problems_for_compose(&text), "only gateway may");
}

#[test]
fn an_upstream_url_on_the_wrong_port_is_reported() {
    let text = COMPOSE.replace("http://tasks-service:8081", "http://tasks-service:9000");
    assert_one(
        &problems_for_compose(&text),
        "TASKS_SERVICE_URL points at http://tasks-service:9000",
    );
}

#[test]
fn waiting_for_health_of_a_service_without_healthcheck_is_reported() {
    let text = COMPOSE.replacen("    healthcheck:\n      test: [\"CMD\", \"/usr/local/bin/http-probe\", \"http://127.0.0.1:8081/readyz\"]\n", "", 1);
    let problems = problems_for_compose(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("waits for tasks-service to be healthy")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("service tasks-service: has no healthcheck")),
        "{problems:#?}"
    );
}

const K8S: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: api }
spec:
  selector: { matchLabels: { app: api } }
  template:
    metadata: { labels: { app: api } }
    spec:
      securityContext: { runAsUser: 65532, runAsGroup: 65532 }
      containers:
        - name: tasks-service
          image: ghcr.io/example/tasks-service:1
          env:
            - { name: TASKS_LISTEN, value: "127.0.0.1:8081" }
            - name: IDENTITY_KEYS
              valueFrom: { secretKeyRef: { name: identity-keys, key: IDENTITY_KEYS } }
          readinessProbe: { exec: { command: ["/usr/local/bin/http-probe", "http://127.0.0.1:8081/readyz"] } }
          livenessProbe: { exec: { command: ["/usr/local/bin/http-probe", "http://127.0.0.1:8081/healthz"] } }
        - name: gateway
          image: ghcr.io/example/gateway:1
          env:
            - { name: GATEWAY_LISTEN, value: "0.0.0.0:8080" }
            - { name: TASKS_SERVICE_URL, value: "http://127.0.0.1:8081" }
            - name: IDENTITY_KEYS
              valueFrom: { secretKeyRef: { name: identity-keys, key: IDENTITY_KEYS } }
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /readyz, port: http } }
          livenessProbe: { httpGet: { path: /healthz, port: http } }
          securityContext: { runAsUser: 65533 }
---
apiVersion: v1
kind: Service
metadata: { name: api }
spec:
  selector: { app: api }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Secret
metadata: { name: identity-keys }
stringData: { IDENTITY_KEYS: REPLACE-ME }
"#;

#[test]
fn the_sample_deployment_is_clean() {
    assert_eq!(problems_for_k8s(K8S), Vec::<String>::new());
}

#[test]
fn a_gateway_with_a_user_of_its_own_is_clean() {
    assert!(K8S.contains("securityContext: { runAsUser: 65533 }"));
    assert_eq!(problems_for_k8s(K8S), Vec::<String>::new());
    // Its own user set on the container, none on the pod: the same.
    let container_level = K8S
        .replace("      securityContext: { runAsUser: 65532, runAsGroup: 65532 }\n", "")
        .replace(
            "          image: ghcr.io/example/tasks-service:1\n",
            "          image: ghcr.io/example/tasks-service:1\n          securityContext: { runAsUser: 65532 }\n",
        );
    assert_eq!(problems_for_k8s(&container_level), Vec::<String>::new());
}

#[test]
fn a_gateway_sharing_its_pods_user_is_reported() {
    // The pod's user only: both containers run as 65532.
    let shared = K8S.replace("          securityContext: { runAsUser: 65533 }\n", "");
    assert_one(
        &problems_for_k8s(&shared),
        "container gateway: runs as user 65532, as does container tasks-service of the same pod",
    );
    assert_one(&problems_for_k8s(&shared), "SO_REUSEPORT");
    // The same user given on each container.
    let same = K8S.replace("runAsUser: 65533", "runAsUser: 65532");
    assert_one(
        &problems_for_k8s(&same),
        "runs as user 65532, as does container tasks-service",
    );
    // No user anywhere: the image's to say, which the manifest cannot check.
    let unnamed = shared.replace(
        "      securityContext: { runAsUser: 65532, runAsGroup: 65532 }\n",
        "",
    );
    assert_one(
        &problems_for_k8s(&unnamed),
        "container gateway: sets no runAsUser",
    );
    // The gateway's own, but its sibling's left to the image.
    let sibling_unnamed = K8S.replace(
        "      securityContext: { runAsUser: 65532, runAsGroup: 65532 }\n",
        "",
    );
    assert_one(
        &problems_for_k8s(&sibling_unnamed),
        "cannot tell whether container tasks-service of the same pod runs as user 65533 too",
    );
}

#[test]
fn a_stop_longer_than_the_pods_termination_grace_is_reported() {
    // Kubernetes' default 30 s, and a gateway that drains for 30 s after a 5 s delay.
    let delayed = K8S.replace(
        "            - { name: GATEWAY_LISTEN, value: \"0.0.0.0:8080\" }\n",
        "            - { name: GATEWAY_LISTEN, value: \"0.0.0.0:8080\" }\n            - { name: SHUTDOWN_DELAY_SECS, value: \"5\" }\n",
    );
    assert_one(
        &problems_for_k8s(&delayed),
        "SHUTDOWN_DELAY_SECS + SHUTDOWN_GRACE_SECS = 5 + 30 s to stop, longer than the pod's terminationGracePeriodSeconds (30)",
    );
    let given_time = delayed.replace(
        "      containers:\n",
        "      terminationGracePeriodSeconds: 40\n      containers:\n",
    );
    assert_eq!(problems_for_k8s(&given_time), Vec::<String>::new());
}

#[test]
fn tasks_service_off_loopback_in_the_pod_is_reported() {
    let text = K8S.replace("value: \"127.0.0.1:8081\" }", "value: \"0.0.0.0:8081\" }");
    assert_one(
        &problems_for_k8s(&text),
        "must listen on 127.0.0.1 in the pod",
    );
}

#[test]
fn an_http_get_probe_on_a_loopback_listener_is_reported() {
    let text = K8S.replace(
        "readinessProbe: { exec: { command: [\"/usr/local/bin/http-probe\", \"http://127.0.0.1:8081/readyz\"] } }",
        "readinessProbe: { httpGet: { path: /readyz, port: 8081 } }",
    );
    assert_one(
        &problems_for_k8s(&text),
        "the kubelet cannot reach 127.0.0.1:8081",
    );
}

#[test]
fn a_missing_liveness_probe_is_reported() {
    let text = K8S.replace(
        "          livenessProbe: { httpGet: { path: /healthz, port: http } }\n",
        "",
    );
    assert_one(
        &problems_for_k8s(&text),
        "container gateway: has no livenessProbe",
    );
}

/// The sample deployment with the gateway's admin listener on 0.0.0.0:9090, port `metrics`.
fn with_admin_port() -> String {
    K8S.replace(
        "            - { name: GATEWAY_LISTEN, value: \"0.0.0.0:8080\" }\n",
        "            - { name: GATEWAY_LISTEN, value: \"0.0.0.0:8080\" }\n            - { name: ADMIN_LISTEN, value: \"0.0.0.0:9090\" }\n",
    )
    .replace(
        "ports: [{ name: http, containerPort: 8080 }]",
        "ports: [{ name: http, containerPort: 8080 }, { name: metrics, containerPort: 9090 }]",
    )
}

#[test]
fn an_admin_port_for_the_scraper_is_clean_but_not_behind_a_service() {
    let text = with_admin_port();
    assert_eq!(problems_for_k8s(&text), Vec::<String>::new());
    let exposed = text.replace("targetPort: http", "targetPort: metrics");
    assert_one(
        &problems_for_k8s(&exposed),
        "targets the admin listener of gateway (ADMIN_LISTEN)",
    );
    let unreachable = text.replace("value: \"0.0.0.0:9090\"", "value: \"127.0.0.1:9090\"");
    assert_one(
        &problems_for_k8s(&unreachable),
        "declares port 9090 for the admin listener, which listens on 127.0.0.1:9090",
    );
}

#[test]
fn a_service_targeting_an_undeclared_port_is_reported() {
    let text = K8S.replace("targetPort: http", "targetPort: 9090");
    assert_one(
        &problems_for_k8s(&text),
        "targets port Number(9090), which no container",
    );
}

#[test]
fn a_sidecar_url_to_a_port_nobody_listens_on_is_reported() {
    let text = K8S.replace(
        "value: \"http://127.0.0.1:8081\"",
        "value: \"http://127.0.0.1:9999\"",
    );
    assert_one(
        &problems_for_k8s(&text),
        "TASKS_SERVICE_URL points at http://127.0.0.1:9999",
    );
}

/// The sample deployment with the gateway reaching tasks-service over a Unix socket in a
/// volume both containers mount, as deploy/k8s does.
fn k8s_over_a_socket() -> String {
    K8S.replace(
        r#"- { name: TASKS_LISTEN, value: "127.0.0.1:8081" }"#,
        "- { name: TASKS_LISTEN, value: \"127.0.0.1:8081\" }\n            \
         - { name: TASKS_SOCKET, value: /run/tasks/http.sock }",
    )
    .replace(
        r#"- { name: TASKS_SERVICE_URL, value: "http://127.0.0.1:8081" }"#,
        r#"- { name: TASKS_SERVICE_URL, value: "unix:/run/tasks/http.sock" }"#,
    )
    .replace(
        "          livenessProbe:",
        "          volumeMounts: [{ name: sock, mountPath: /run/tasks }]\n          livenessProbe:",
    )
    .replace(
        "      containers:\n",
        "      volumes: [{ name: sock, emptyDir: {} }]\n      containers:\n",
    )
}

#[test]
fn a_sidecar_over_a_socket_in_a_shared_volume_is_clean() {
    let text = k8s_over_a_socket();
    assert_eq!(text.matches("mountPath: /run/tasks").count(), 2, "{text}");
    assert_eq!(problems_for_k8s(&text), Vec::<String>::new());
}

#[test]
fn a_socket_no_sibling_makes_or_shares_is_reported() {
    let elsewhere = k8s_over_a_socket().replace(
        "value: \"unix:/run/tasks/http.sock\"",
        "value: \"unix:/run/tasks/other.sock\"",
    );
    assert_one(
        &problems_for_k8s(&elsewhere),
        "TASKS_SERVICE_URL points at unix:/run/tasks/other.sock, but no sibling sets TASKS_SOCKET=/run/tasks/other.sock",
    );
    // The gateway's mount removed (the second one): it would see an empty directory.
    let text = k8s_over_a_socket();
    let last = text.rfind("          volumeMounts:").unwrap();
    let end = last + text[last..].find('\n').unwrap() + 1;
    let unmounted = format!("{}{}", &text[..last], &text[end..]);
    assert_one(
        &problems_for_k8s(&unmounted),
        "but gateway and tasks-service do not mount one volume at its directory",
    );
    // Each its own volume at the same path: two directories, no socket in common.
    let apart = text.replacen("{ name: sock, mountPath", "{ name: other, mountPath", 1);
    assert_one(&problems_for_k8s(&apart), "do not mount one volume");
}

#[test]
fn compose_services_sharing_a_socket_need_one_named_volume() {
    let shared = COMPOSE
        .replace(
            "    environment:\n      TASKS_LISTEN: 0.0.0.0:8081\n",
            "    volumes: [\"sock:/run/tasks\"]\n    environment:\n      TASKS_LISTEN: 0.0.0.0:8081\n      TASKS_SOCKET: /run/tasks/http.sock\n",
        )
        .replace(
            "    environment:\n      GATEWAY_LISTEN: 0.0.0.0:8080\n      TASKS_SERVICE_URL: http://tasks-service:8081\n",
            "    volumes: [{ type: volume, source: sock, target: /run/tasks }]\n    environment:\n      GATEWAY_LISTEN: 0.0.0.0:8080\n      TASKS_SERVICE_URL: unix:/run/tasks/http.sock\n",
        );
    assert_eq!(
        shared.matches("/run/tasks }").count() + shared.matches("/run/tasks\"").count(),
        2
    );
    assert_eq!(problems_for_compose(&shared), Vec::<String>::new());
    let apart = shared.replace("source: sock", "source: elsewhere");
    assert_one(&problems_for_compose(&apart), "do not mount one volume");
}

#[test]
fn a_secret_key_nobody_provides_is_reported() {
    let text = K8S.replace(
        "stringData: { IDENTITY_KEYS: REPLACE-ME }",
        "stringData: { KEYS: REPLACE-ME }",
    );
    let problems = problems_for_k8s(&text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems
        .iter()
        .all(|p| p.contains("reads key IDENTITY_KEYS of Secret identity-keys")));
}

#[test]
fn env_from_is_refused_because_it_hides_names() {
    let text = K8S.replace(
        "          ports: [{ name: http, containerPort: 8080 }]",
        "          envFrom: [{ configMapRef: { name: extra } }]\n          ports: [{ name: http, containerPort: 8080 }]",
    );
    assert_one(&problems_for_k8s(&text), "uses envFrom");
}

#[test]
fn an_overlay_patch_is_checked_for_what_it_sets_only() {
    let patch = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: api }
spec:
  template:
    spec:
      containers:
        - name: gateway
          env: [{ name: LOG_FORMAT, value: pretty }, { name: LOG_LEVEL, value: debug }]
"#;
    assert_one(
        &problems_for_k8s(patch),
        "sets LOG_LEVEL, which gateway does not read",
    );
}

#[test]
fn a_database_url_logging_in_as_the_superuser_is_reported() {
    let with_url = |url: &str| {
        COMPOSE.replace(
            "      TASKS_LISTEN: 0.0.0.0:8081\n",
            &format!("      TASKS_LISTEN: 0.0.0.0:8081\n      DATABASE_URL: {url}\n"),
        )
    };
    for url in [
        "postgres://postgres:${POSTGRES_PASSWORD}@postgres:5432/tasks",
        "postgresql://postgres@db/tasks?sslmode=require",
    ] {
        assert_one(
            &problems_for_compose(&with_url(url)),
            "sets DATABASE_URL to log in as the superuser postgres",
        );
    }
    for url in [
        "postgres://tasks_service:${TASKS_DB_PASSWORD}@postgres:5432/tasks",
        "postgres://postgresql-app@db/tasks",
        "postgres://db/tasks",
    ] {
        assert_eq!(
            problems_for_compose(&with_url(url)),
            Vec::<String>::new(),
            "{url}"
        );
    }
}

#[test]
fn a_log_filter_letting_tokio_postgres_log_statements_is_reported() {
    let patch = |filter: &str| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{ name: api }}
spec:
  template:
    spec:
      containers:
        - name: tasks-service
          env: [{{ name: RUST_LOG, value: "{filter}" }}]
"#
        )
    };
    for filter in [
        "debug",
        "TRACE",
        "info,tokio_postgres=debug",
        "info,tokio_postgres",
        "warn,tokio=debug",
        "debug,tokio_postgres::query=info",
        "info,tokio_postgres::query=trace",
        "debug,tokio_postgres=info,tokio_postgres::query=debug",
    ] {
        assert_one(
            &problems_for_k8s(&patch(filter)),
            "at which tokio_postgres logs every statement's parameters",
        );
    }
    for filter in [
        "info",
        "gateway=debug,tasks_service=trace",
        "debug,tokio_postgres=info",
        "trace,tokio_postgres=warn",
        "debug,tokio=info",
        "debug,tokio_postgres=off",
    ] {
        assert_eq!(
            problems_for_k8s(&patch(filter)),
            Vec::<String>::new(),
            "{filter}"
        );
    }
    // Compose too, where the file's default is what runs when the variable is unset.
    let compose = |filter: &str| {
        COMPOSE.replace(
            "      TASKS_LISTEN: 0.0.0.0:8081",
            &format!("      TASKS_LISTEN: 0.0.0.0:8081\n      RUST_LOG: {filter}"),
        )
    };
    assert_one(
        &problems_for_compose(&compose("${RUST_LOG:-debug}")),
        "add tokio_postgres=info",
    );
    assert_eq!(
        problems_for_compose(&compose("${RUST_LOG:-info}")),
        Vec::<String>::new()
    );
}

const DOCKERFILE: &str = r#"
FROM rust:1 AS builder
ENV CARGO_TERM_COLOR=always
FROM gcr.io/distroless/cc-debian12:nonroot
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s \
  CMD ["/usr/local/bin/http-probe", "--listen-env", "GATEWAY_LISTEN", "/healthz"]
"#;

fn problems_for_dockerfile(text: &str) -> Vec<String> {
    let image = dockerfile::parse("Dockerfile.gateway", "gateway", text).unwrap();
    let manifests = Manifests {
        images: vec![image],
        ..Default::default()
    };
    check_all(&manifests, &lists())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_sample_dockerfile_is_clean_and_only_its_last_stage_counts() {
    assert_eq!(problems_for_dockerfile(DOCKERFILE), Vec::<String>::new());
}

#[test]
fn an_image_env_the_binary_does_not_read_is_reported() {
    let text = DOCKERFILE.replace("LOG_FORMAT=json", "LOG_FORMAT=json GATEWAY_PORT=8080");
    assert_one(
        &problems_for_dockerfile(&text),
        "sets GATEWAY_PORT, which gateway does not read",
    );
}

#[test]
fn an_image_exposing_another_port_is_reported() {
    let text = DOCKERFILE.replace("EXPOSE 8080", "EXPOSE 80");
    assert_one(
        &problems_for_dockerfile(&text),
        "declares container port 80",
    );
}

#[test]
fn an_image_healthcheck_follows_its_listen_env() {
    let text = DOCKERFILE
        .replace("EXPOSE 8080", "EXPOSE 9000")
        .replace("0.0.0.0:8080", "0.0.0.0:9000");
    assert_eq!(problems_for_dockerfile(&text), Vec::<String>::new());
    let text = DOCKERFILE.replace(
        "\"GATEWAY_LISTEN\", \"/healthz\"",
        "\"TASKS_LISTEN\", \"/healthz\"",
    );
    assert_one(&problems_for_dockerfile(&text), "TASKS_LISTEN is not set");
}

#[test]
fn an_image_without_healthcheck_is_reported() {
    let text = DOCKERFILE.split("HEALTHCHECK").next().unwrap().to_owned();
    assert_one(&problems_for_dockerfile(&text), "has no HEALTHCHECK");
}

#[test]
fn a_variable_expanded_into_one_the_binary_reads_is_not_reported() {
    let patch = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: api }
spec:
  template:
    spec:
      containers:
        - name: gateway
          env:
            - { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
            - { name: TASKS_SERVICE_URL, value: "http://$(POD_NAME).tasks:8081" }
            - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
"#;
    assert_one(
        &problems_for_k8s(patch),
        "sets POD_IP, which gateway does not read",
    );
}
