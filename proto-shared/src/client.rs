//! A typed async client for services inside the cluster that call tasks-service directly,
//! signing each request with their own key instead of going through the gateway.
//!
//! ```no_run
//! # async fn demo() -> Result<(), proto_shared::client::ClientError> {
//! use proto_shared::{client::TasksClient, Audience, CreateTask, KeyRing, Signer, UserId};
//! let ring: KeyRing = "reports:a-secret-of-at-least-32-bytes-long".parse().unwrap();
//! let client = TasksClient::new("http://127.0.0.1:8081", Signer::new(&ring, Audience::default()))?;
//! let user = UserId::parse("k3Jx9Qz1vBn7").unwrap();
//! let task = client.create(&user, &CreateTask { title: "Write report".into(), description: None }).await?;
//! client.complete(&user, task.id, Some(true)).await?;
//! # Ok(()) }
//! ```
//!
//! The client never follows a redirect: each request carries a fresh credential (and body)
//! that anyone it reaches can present to tasks-service once, so it goes to the base URL and
//! nowhere else; a 3xx answer is a [`ClientError::Api`]. Every request has a deadline
//! ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`]), and idle connections are dropped before the
//! service would close them ([`POOL_IDLE_TIMEOUT`]).

use std::time::Duration;

use http::{header, Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    identity::unix_now, BodyDigest, CompleteTask, CreateTask, ErrorBody, Signer, SortOrder,
    StatusFilter, Task, TaskId, UpdateTask, UserId,
};

/// What can go wrong calling the task API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error status and a `{"detail": ...}` body.
    #[error("the task API answered {status}")]
    Api { status: StatusCode, body: ErrorBody },
    /// The request did not complete (a timeout among them: [`reqwest::Error::is_timeout`]),
    /// the response was not what the API promises, or the HTTP client could not be built.
    #[error("calling the task API failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The base URL is not `scheme://host[:port]`.
    #[error("the task API base URL must be scheme://host[:port] with no path: {0}")]
    BaseUrl(String),
}

/// Longest wait for a connection to the service to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a request may take, from connecting until the response body is read, unless
/// [`TasksClient::with_request_timeout`] sets another. A credential is fresh for 30 s by
/// default (tasks-service's `IDENTITY_MAX_SKEW_SECS`), so a request still on its way after
/// that is refused anyway; without a deadline, a service that accepts and never answers
/// would hold the caller forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection is kept for reuse. tasks-service closes a keep-alive
/// connection on which no request head arrives within `HEADER_READ_TIMEOUT_SECS` (10 s by
/// default); a request sent on a pooled connection just as the service closes it fails
/// (`IncompleteMessage`). Dropping idle connections well before that avoids the race. It
/// comes back if the service is run with `HEADER_READ_TIMEOUT_SECS` of 5 or less.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Filters and paging for [`TasksClient::list`]; `None` leaves the service's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub status: Option<StatusFilter>,
    pub sort: Option<SortOrder>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Calls tasks-service with a fresh credential per request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TasksClient {
    http: reqwest::Client,
    origin: String,
    signer: Signer,
    request_timeout: Duration,
}

impl TasksClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8081`). Proxies named
    /// in the environment (`HTTP_PROXY`, `ALL_PROXY`) are not used: a proxy on the way to an
    /// in-cluster service would see each credential before the service spends it.
    pub fn new(base_url: &str, signer: Signer) -> Result<Self, ClientError> {
        Self::with_client_builder(reqwest::Client::builder().no_proxy(), base_url, signer)
    }

    /// Same as [`TasksClient::new`], with the HTTP client built from `builder` (TLS roots, a
    /// user agent, a resolver, a proxy...). Set on top of whatever the builder says: no
    /// redirects, [`CONNECT_TIMEOUT`] and [`POOL_IDLE_TIMEOUT`]. Each request's total timeout
    /// is [`REQUEST_TIMEOUT`] (or [`TasksClient::with_request_timeout`]'s), which replaces a
    /// `timeout` set on the builder; its `read_timeout`, if any, still applies. Proxies are
    /// the builder's choice: reqwest's default reads them from the environment
    /// (`no_proxy()` turns that off, as [`TasksClient::new`] does).
    pub fn with_client_builder(
        builder: reqwest::ClientBuilder,
        base_url: &str,
        signer: Signer,
    ) -> Result<Self, ClientError> {
        // The signature covers the path as the service receives it, so a path prefix that a
        // proxy would rewrite can only produce credentials that fail; refuse it up front.
        let url = reqwest::Url::parse(base_url).map_err(|e| ClientError::BaseUrl(e.to_string()))?;
        if url.path() != "/" || url.query().is_some() || url.cannot_be_a_base() {
            return Err(ClientError::BaseUrl(base_url.to_owned()));
        }
        let origin = url.origin().ascii_serialization();
        let http = builder
            // reqwest keeps custom headers when a redirect leaves the host: following one
            // would hand the unspent credential (and the body it signs) to whoever `Location`
            // names.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            origin,
            signer,
            request_timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with another total timeout per request (connecting included) than
    /// [`REQUEST_TIMEOUT`]: shorter for a caller with a tighter deadline of its own. Longer
    /// buys nothing once the credential has gone stale at the service.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// `GET /api/{user_id}/tasks`.
    pub async fn list(&self, user: &UserId, params: &ListParams) -> Result<Vec<Task>, ClientError> {
        let mut query = Vec::new();
        if let Some(status) = params.status {
            query.push(format!("status={status}"));
        }
        if let Some(sort) = params.sort {
            query.push(format!("sort={sort}"));
        }
        if let Some(limit) = params.limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(offset) = params.offset {
            query.push(format!("offset={offset}"));
        }
        let mut path = tasks_path(user);
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        self.call(Method::GET, user, path, None::<&()>).await
    }

    /// `POST /api/{user_id}/tasks`.
    pub async fn create(&self, user: &UserId, task: &CreateTask) -> Result<Task, ClientError> {
        self.call(Method::POST, user, tasks_path(user), Some(task))
            .await
    }

    /// `GET /api/{user_id}/tasks/{id}`.
    pub async fn get(&self, user: &UserId, id: TaskId) -> Result<Task, ClientError> {
        self.call(Method::GET, user, task_path(user, id), None::<&()>)
            .await
    }

    /// `PUT /api/{user_id}/tasks/{id}`.
    pub async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        changes: &UpdateTask,
    ) -> Result<Task, ClientError> {
        self.call(Method::PUT, user, task_path(user, id), Some(changes))
            .await
    }

    /// `DELETE /api/{user_id}/tasks/{id}`.
    pub async fn delete(&self, user: &UserId, id: TaskId) -> Result<(), ClientError> {
        let response = self
            .send(Method::DELETE, user, task_path(user, id), None::<&()>)
            .await?;
        check(response).await.map(drop)
    }

    /// `PATCH /api/{user_id}/tasks/{id}/complete`: `None` toggles, `Some(state)` sets it.
    pub async fn complete(
        &self,
        user: &UserId,
        id: TaskId,
        completed: Option<bool>,
    ) -> Result<Task, ClientError> {
        let path = format!("{}/complete", task_path(user, id));
        let body = completed.map(|completed| CompleteTask {
            completed: Some(completed),
        });
        self.call(Method::PATCH, user, path, body.as_ref()).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        user: &UserId,
        path_and_query: String,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, user, path_and_query, body).await?;
        Ok(check(response).await?.json().await?)
    }

    async fn send(
        &self,
        method: Method,
        user: &UserId,
        path_and_query: String,
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::Response, ClientError> {
        // The credential signs the body's digest, so the body is serialized first.
        let json = body.map(|body| serde_json::to_vec(body).expect("wire types always serialize"));
        let digest = json.as_deref().map_or(BodyDigest::EMPTY, BodyDigest::of);
        let identity = self
            .signer
            .sign(&method, &path_and_query, user, digest, unix_now());
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.origin))
            .timeout(self.request_timeout)
            .header(crate::headers::USER_ID, identity.user_id)
            .header(crate::headers::IDENTITY_CREDENTIAL, identity.credential);
        if let Some(json) = json {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(json);
        }
        Ok(request.send().await?)
    }
}

/// Passes a success through; turns any other status into [`ClientError::Api`], a redirect
/// (3xx, never followed) included.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        ErrorBody::message(
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>(),
        )
    });
    Err(ClientError::Api { status, body })
}

fn tasks_path(user: &UserId) -> String {
    format!("/api/{}/tasks", user.to_path_segment())
}

fn task_path(user: &UserId, id: TaskId) -> String {
    format!("{}/{id}", tasks_path(user))
}
