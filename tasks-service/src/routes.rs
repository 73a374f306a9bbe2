//! The whole HTTP surface as one warp filter, and the route templates that metrics and the
//! 405 `Allow` header use. Rejections of every route meet in the single `error::recover`.

pub mod extract;
pub mod tasks;
pub mod whoami;

use std::convert::Infallible;

use warp::{reply::Response, Filter};

use crate::{error, health, state::AppState};

/// Every endpoint; never rejects (rejections are recovered into responses).
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    health::routes(state.clone())
        .or(tasks::list(state.clone()))
        .unify()
        .or(tasks::create(state.clone()))
        .unify()
        .or(tasks::get(state.clone()))
        .unify()
        .or(tasks::update(state.clone()))
        .unify()
        .or(tasks::delete(state.clone()))
        .unify()
        .or(tasks::complete(state.clone()))
        .unify()
        .or(whoami::whoami(state))
        .unify()
        .recover(error::recover)
        .unify()
}

/// The route template a path matches, as metrics label it (never the raw path, which holds
/// user ids). Mirrors the warp paths above, including warp's tolerance of one trailing `/`.
pub fn route_template(path: &str) -> &'static str {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        ["whoami"] => "/whoami",
        ["api", user, "tasks"] if !user.is_empty() => "/api/{user_id}/tasks",
        ["api", user, "tasks", id] if !user.is_empty() && !id.is_empty() => {
            "/api/{user_id}/tasks/{id}"
        }
        ["api", user, "tasks", id, "complete"] if !user.is_empty() && !id.is_empty() => {
            "/api/{user_id}/tasks/{id}/complete"
        }
        _ => "unmatched",
    }
}

/// The methods a route template answers, for the `Allow` header of a 405.
pub fn allowed_methods(template: &str) -> Option<&'static str> {
    match template {
        "/healthz" | "/readyz" | "/metrics" | "/whoami" => Some("GET"),
        "/api/{user_id}/tasks" => Some("GET, POST"),
        "/api/{user_id}/tasks/{id}" => Some("GET, PUT, DELETE"),
        "/api/{user_id}/tasks/{id}/complete" => Some("PATCH"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hide_ids() {
        assert_eq!(route_template("/api/u1/tasks"), "/api/{user_id}/tasks");
        assert_eq!(route_template("/api/u1/tasks/"), "/api/{user_id}/tasks");
        assert_eq!(
            route_template("/api/u1/tasks/7"),
            "/api/{user_id}/tasks/{id}"
        );
        assert_eq!(
            route_template("/api/u1/tasks/7/complete"),
            "/api/{user_id}/tasks/{id}/complete"
        );
        assert_eq!(route_template("/api//tasks"), "unmatched");
        assert_eq!(route_template("/"), "unmatched");
        assert_eq!(route_template("/nope"), "unmatched");
        assert_eq!(route_template("/healthz"), "/healthz");
    }
}
