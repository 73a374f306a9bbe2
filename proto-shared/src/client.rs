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
    /// The request did not complete, or the response was not what the API promises.
    #[error("calling the task API failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The base URL is not `scheme://host[:port]`.
    #[error("the task API base URL must be scheme://host[:port] with no path: {0}")]
    BaseUrl(String),
}

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
}

impl TasksClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(base_url: &str, signer: Signer) -> Result<Self, ClientError> {
        Self::with_http_client(reqwest::Client::new(), base_url, signer)
    }

    /// Same as [`TasksClient::new`], reusing a configured `reqwest::Client`.
    pub fn with_http_client(
        http: reqwest::Client,
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
        Ok(Self {
            http,
            origin,
            signer,
        })
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

/// Passes a success through; turns an error status into [`ClientError::Api`].
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
