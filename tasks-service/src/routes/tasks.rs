//! One filter per task endpoint. Each matches path, then method, then identity, then the
//! rest, so an unknown route is 404, a wrong method 405, and only then does 401 apply.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::extract::{self, authorize, authorize_task, authorize_task_with, authorize_with};
use crate::{
    domain::{Completion, NewTask, TaskChanges},
    handlers,
    state::{with_state, AppState, RequestTarget},
};

/// `GET /api/{user_id}/tasks`
pub fn list(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks")
        .and(warp::get())
        .and(extract::identity(state.clone()))
        .and_then(authorize)
        .and(extract::list_params())
        .and(warp::ext::get::<RequestTarget>())
        .and(with_state(state))
        .and_then(handlers::list)
        .boxed()
}

/// `POST /api/{user_id}/tasks`
pub fn create(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks")
        .and(warp::post())
        .and(extract::identity(state.clone()))
        .and_then(authorize_with::<NewTask>)
        .untuple_one()
        .and(with_state(state))
        .and_then(handlers::create)
        .boxed()
}

/// `GET /api/{user_id}/tasks/{id}`
pub fn get(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks" / String)
        .and(warp::get())
        .and(extract::identity(state.clone()))
        .and_then(authorize_task)
        .untuple_one()
        .and(with_state(state))
        .and_then(handlers::get)
        .boxed()
}

/// `PUT /api/{user_id}/tasks/{id}`
pub fn update(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks" / String)
        .and(warp::put())
        .and(extract::identity(state.clone()))
        .and_then(authorize_task_with::<TaskChanges>)
        .untuple_one()
        .and(with_state(state))
        .and_then(handlers::update)
        .boxed()
}

/// `DELETE /api/{user_id}/tasks/{id}`
pub fn delete(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks" / String)
        .and(warp::delete())
        .and(extract::identity(state.clone()))
        .and_then(authorize_task)
        .untuple_one()
        .and(with_state(state))
        .and_then(handlers::delete)
        .boxed()
}

/// `PATCH /api/{user_id}/tasks/{id}/complete`
pub fn complete(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / String / "tasks" / String / "complete")
        .and(warp::patch())
        .and(extract::identity(state.clone()))
        .and_then(authorize_task_with::<Completion>)
        .untuple_one()
        .and(with_state(state))
        .and_then(handlers::complete)
        .boxed()
}
