//! A user's session with a real Better Auth server, driven over HTTP as a browser would:
//! JSON sign-up and sign-in that set a session cookie, then JWTs from `GET /api/auth/token`
//! and from the `set-auth-jwt` header of `GET /api/auth/get-session`; the session endpoints
//! (list, revoke) and, for an admin, the admin plugin's.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

/// A signed-in user. `base` is where Better Auth is reached: directly, or through the
/// gateway's public `/api/auth/` route.
#[derive(Debug, Clone)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    pub user_id: String,
    pub email: String,
}

/// A password that meets Better Auth's default length rule.
pub const PASSWORD: &str = "correct-horse-battery-staple";

impl Session {
    /// Signs a new user up (Better Auth signs them in at once).
    pub async fn sign_up(base: &str, name: &str) -> Self {
        let email = format!("{name}-{}@example.test", uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "password": PASSWORD, "name": name});
        Self::post_auth(base, "sign-up/email", body, &email).await
    }

    /// Signs an existing user in from scratch (a new session and cookie).
    pub async fn sign_in(base: &str, email: &str) -> Self {
        let body = json!({"email": email, "password": PASSWORD});
        Self::post_auth(base, "sign-in/email", body, email).await
    }

    async fn post_auth(base: &str, route: &str, body: Value, email: &str) -> Self {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{base}/api/auth/{route}"))
            .header(header::ORIGIN, base)
            .json(&body)
            .send()
            .await
            .expect("reach Better Auth");
        let status = response.status();
        let cookie = session_cookie(response.headers());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{route} failed: {answer}");
        assert!(!cookie.is_empty(), "{route} set no session cookie");
        let user_id = answer["user"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{route} returned no user id: {answer}"))
            .to_owned();
        Self {
            http,
            base: base.to_owned(),
            cookie,
            user_id,
            email: email.to_owned(),
        }
    }

    /// `GET /api/auth/token` → the JWT, or the status when there is none.
    pub async fn try_token(&self) -> Result<String, StatusCode> {
        let response = self.get("token").await;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(status);
        }
        let body: Value = response.json().await.expect("token answer is JSON");
        Ok(body["token"].as_str().expect("a token field").to_owned())
    }

    /// `GET /api/auth/token`, which must succeed.
    pub async fn token(&self) -> String {
        self.try_token().await.expect("GET /api/auth/token")
    }

    /// The JWT Better Auth's JWT plugin puts in `set-auth-jwt` on `GET /api/auth/get-session`.
    pub async fn session_header_token(&self) -> String {
        let response = self.get("get-session").await;
        assert_eq!(response.status(), StatusCode::OK);
        response
            .headers()
            .get("set-auth-jwt")
            .expect("get-session sets set-auth-jwt")
            .to_str()
            .expect("a JWT is ASCII")
            .to_owned()
    }

    /// `POST /api/auth/sign-out`: the session and its cookie stop working.
    pub async fn sign_out(&self) {
        let response = self
            .http
            .post(format!("{}/api/auth/sign-out", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::ORIGIN, &self.base)
            .json(&json!({}))
            .send()
            .await
            .expect("reach Better Auth");
        assert_eq!(response.status(), StatusCode::OK, "sign-out");
    }

    /// `POST /api/auth/{route}` with a JSON body as this session; the status and JSON answer.
    pub async fn post(&self, route: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/auth/{route}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::ORIGIN, &self.base)
            .json(&body)
            .send()
            .await
            .expect("reach Better Auth");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/auth/{route}`, which must answer 200; its JSON answer.
    pub async fn expect_post(&self, route: &str, body: Value) -> Value {
        let (status, answer) = self.post(route, body).await;
        assert_eq!(status, StatusCode::OK, "{route} failed: {answer}");
        answer
    }

    /// `GET /api/auth/list-sessions`: the user's live sessions (`id`, `token`, ...).
    pub async fn list_sessions(&self) -> Vec<Value> {
        let response = self.get("list-sessions").await;
        assert_eq!(response.status(), StatusCode::OK, "list-sessions");
        let answer: Value = response.json().await.expect("list-sessions answers JSON");
        answer.as_array().expect("an array of sessions").clone()
    }

    /// This session's id (`session.id`, the `sid` claim of its JWTs).
    pub async fn session_id(&self) -> String {
        let response = self.get("get-session").await;
        assert_eq!(response.status(), StatusCode::OK, "get-session");
        let answer: Value = response.json().await.expect("get-session answers JSON");
        answer["session"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("get-session returned no session: {answer}"))
            .to_owned()
    }

    async fn get(&self, route: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/auth/{route}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .expect("reach Better Auth")
    }
}

/// `name=value` pairs of every `Set-Cookie`, as a `Cookie` header would send them back.
fn session_cookie(headers: &header::HeaderMap) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The decoded JOSE header and claims of a JWT (no verification: for assertions only).
pub fn decode_unverified(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let raw = URL_SAFE_NO_PAD
            .decode(parts.next().expect("a JWT has three parts"))
            .expect("base64url");
        serde_json::from_slice::<Value>(&raw).expect("JSON")
    };
    (part(), part())
}
