//! The task API as a browser calls it: through the gateway with `Authorization: Bearer`.

use reqwest::{header, Method, StatusCode};
use serde_json::Value;

/// Calls `/api/{user}/...` on the gateway with a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    gateway: String,
    token: String,
}

/// A response's status, JSON body (`Null` when empty) and `WWW-Authenticate` header.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub www_authenticate: Option<String>,
}

impl Api {
    /// A client for `gateway` presenting `token`.
    pub fn new(gateway: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            gateway: gateway.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The same client with another token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// Sends `method path` (e.g. `/api/u1/tasks`) with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("reach the gateway");
        let status = response.status();
        let www_authenticate = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.expect("read the body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            body,
            www_authenticate,
        }
    }
}
