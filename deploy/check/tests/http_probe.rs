//! The `http-probe` binary against real sockets: exit 0 on 2xx only, a reason otherwise.

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::Command,
    thread::JoinHandle,
};

/// Serves one connection with `response`, returning the request it read.
fn serve_once(response: &'static str) -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match stream.read(&mut buf).unwrap() {
                0 => break,
                n => request.extend_from_slice(&buf[..n]),
            }
        }
        stream.write_all(response.as_bytes()).unwrap();
        String::from_utf8(request).unwrap()
    });
    (port, handle)
}

fn probe(args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_http-probe"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_200_passes_and_the_request_is_a_plain_get_of_the_path() {
    let (port, server) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let (code, stderr) = probe(&[&format!("http://127.0.0.1:{port}/readyz?full=1")], &[]);
    assert_eq!(code, 0, "{stderr}");
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /readyz?full=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
}

#[test]
fn a_503_fails_and_says_so() {
    let (port, server) =
        serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    let (code, stderr) = probe(&[&format!("http://127.0.0.1:{port}/readyz")], &[]);
    server.join().unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("answered 503"), "{stderr}");
}

#[test]
fn a_closed_port_fails_with_the_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, stderr) = probe(&[&format!("http://127.0.0.1:{port}/healthz")], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn a_non_http_answer_fails() {
    let (port, server) = serve_once("SSH-2.0-OpenSSH\r\n\r\n");
    let (code, stderr) = probe(&[&format!("http://127.0.0.1:{port}/healthz")], &[]);
    server.join().unwrap();
    assert_eq!(code, 1);
    assert!(
        stderr.contains("did not answer with an HTTP status line"),
        "{stderr}"
    );
}

#[test]
fn the_listen_env_form_turns_a_wildcard_into_loopback() {
    let (port, server) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
    let env = [("GATEWAY_LISTEN", format!("0.0.0.0:{port}"))];
    let (code, stderr) = probe(&["--listen-env", "GATEWAY_LISTEN", "/healthz"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(server.join().unwrap().starts_with("GET /healthz "));
}

#[test]
fn an_unset_listen_variable_or_bad_usage_fails() {
    let (code, stderr) = probe(&["--listen-env", "GATEWAY_LISTEN", "/healthz"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("GATEWAY_LISTEN is not set"), "{stderr}");
    assert_eq!(probe(&[], &[]).0, 2);
    assert_eq!(probe(&["https://127.0.0.1/"], &[]).0, 2);
}

#[test]
fn the_body_form_prints_the_body_and_still_fails_on_an_error_status() {
    let body_of = |response: &'static str| {
        let (port, server) = serve_once(response);
        let out = Command::new(env!("CARGO_BIN_EXE_http-probe"))
            .args(["--body", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .unwrap();
        server.join().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) =
        body_of("HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\nup 1\nrequests 7\nnot this");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "up 1\nrequests 7\n");
    let (code, stdout, _) = body_of("HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready");
    assert_eq!((code, stdout.as_str()), (Some(1), "not ready"));
    let (code, stdout, stderr) =
        body_of("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(stderr.contains("chunked"), "{stderr}");
}
