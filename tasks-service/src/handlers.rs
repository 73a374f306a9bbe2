//! One function per endpoint: the inputs arrive parsed and authorized, the handler calls the
//! store and shapes the success response. Failures are [`ApiError`]s, answered in error.rs.

use http::{header, HeaderValue, StatusCode};
use proto_shared::{headers::TOTAL_COUNT, TaskId, UserId};
use warp::{reply::Response, Rejection};

use crate::{
    domain::{link_header, Completion, ListParams, NewTask, TaskChanges},
    error::{json_response, ApiError},
    state::{AppState, RequestTarget},
};

fn reject(error: impl Into<ApiError>) -> Rejection {
    Rejection::from(error.into())
}

/// `GET /api/{user_id}/tasks`: 200 with a JSON array (the page), `X-Total-Count` (how many
/// tasks match the filter on all pages) and, when there is more, `Link` with `next`/`prev`.
pub async fn list(
    user: UserId,
    params: ListParams,
    target: RequestTarget,
    state: AppState,
) -> Result<Response, Rejection> {
    let page = state.store.list(&user, &params).await.map_err(reject)?;
    let mut response = json_response(StatusCode::OK, &page.tasks);
    let headers = response.headers_mut();
    headers.insert(TOTAL_COUNT, HeaderValue::from(page.total));
    let path = target
        .0
        .split_once('?')
        .map_or(&*target.0, |(path, _)| path);
    if let Some(links) = link_header(path, &params, page.tasks.len(), page.total) {
        // The path is the request's own, already a valid header value; never fails.
        if let Ok(value) = HeaderValue::from_str(&links) {
            headers.insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// `POST /api/{user_id}/tasks`: 201 with the task, sent only after the commit.
pub async fn create(user: UserId, new: NewTask, state: AppState) -> Result<Response, Rejection> {
    let task = state.store.create(&user, &new).await.map_err(reject)?;
    tracing::info!(task_id = task.id, "task created");
    Ok(json_response(StatusCode::CREATED, &task))
}

/// `GET /api/{user_id}/tasks/{id}`: 200, or 404 whether absent or another user's.
pub async fn get(user: UserId, id: TaskId, state: AppState) -> Result<Response, Rejection> {
    match state.store.get(&user, id).await.map_err(reject)? {
        Some(task) => Ok(json_response(StatusCode::OK, &task)),
        None => Err(reject(ApiError::TaskNotFound)),
    }
}

/// `PUT /api/{user_id}/tasks/{id}`: 200 with the updated task.
pub async fn update(
    user: UserId,
    id: TaskId,
    changes: TaskChanges,
    state: AppState,
) -> Result<Response, Rejection> {
    match state
        .store
        .update(&user, id, &changes)
        .await
        .map_err(reject)?
    {
        Some(task) => Ok(json_response(StatusCode::OK, &task)),
        None => Err(reject(ApiError::TaskNotFound)),
    }
}

/// `DELETE /api/{user_id}/tasks/{id}`: 204 with an empty body.
pub async fn delete(user: UserId, id: TaskId, state: AppState) -> Result<Response, Rejection> {
    if state.store.delete(&user, id).await.map_err(reject)? {
        let mut response = Response::new(Default::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    } else {
        Err(reject(ApiError::TaskNotFound))
    }
}

/// `PATCH /api/{user_id}/tasks/{id}/complete`: 200 with the task after toggling or setting.
pub async fn complete(
    user: UserId,
    id: TaskId,
    completion: Completion,
    state: AppState,
) -> Result<Response, Rejection> {
    match state
        .store
        .complete(&user, id, completion)
        .await
        .map_err(reject)?
    {
        Some(task) => Ok(json_response(StatusCode::OK, &task)),
        None => Err(reject(ApiError::TaskNotFound)),
    }
}
