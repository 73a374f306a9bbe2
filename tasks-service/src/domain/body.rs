//! Request bodies, parsed field by field from JSON so every problem is reported the way
//! pydantic reports it (`loc: ["body", field]`), all at once, and unknown fields are ignored.

use proto_shared::FieldError;
use serde_json::{Map, Value};

use super::fields::{Description, Problem, Title};

/// The body of `POST /api/{user_id}/tasks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: Title,
    pub description: Option<Description>,
}

/// The body of `PUT /api/{user_id}/tasks/{id}`: a partial update. `description:
/// Some(None)` (JSON `null`) clears the description; absent fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskChanges {
    pub title: Option<Title>,
    pub description: Option<Option<Description>>,
    pub completed: Option<bool>,
}

/// What `PATCH /api/{user_id}/tasks/{id}/complete` does: flip the flag, or set it (so a
/// retried request with a body is idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Toggle,
    Set(bool),
}

impl NewTask {
    /// Parses a create body; `title` is required, `description` may be absent or null.
    pub fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        let object = required_object(body)?;
        let mut errors = Vec::new();
        let title = match object.get("title") {
            None => {
                errors.push(field_error(
                    "title",
                    Problem::new("missing", "Field required"),
                ));
                None
            }
            Some(value) => collect(&mut errors, "title", title(value)),
        };
        let description = match object.get("description") {
            None | Some(Value::Null) => Some(None),
            Some(value) => collect(&mut errors, "description", description(value)).map(Some),
        };
        match (title, description) {
            (Some(title), Some(description)) if errors.is_empty() => {
                Ok(Self { title, description })
            }
            _ => Err(errors),
        }
    }
}

impl TaskChanges {
    /// Parses an update body; every field is optional.
    pub fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        let object = required_object(body)?;
        let mut errors = Vec::new();
        let mut changes = Self::default();
        if let Some(value) = object.get("title") {
            changes.title = collect(&mut errors, "title", title(value));
        }
        match object.get("description") {
            None => {}
            Some(Value::Null) => changes.description = Some(None),
            Some(value) => {
                changes.description =
                    collect(&mut errors, "description", description(value)).map(Some);
            }
        }
        if let Some(value) = object.get("completed") {
            changes.completed = collect(&mut errors, "completed", boolean(value));
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

impl Completion {
    /// No body (empty, or JSON `null`) toggles; `{"completed": bool}` sets; `{}` or
    /// `{"completed": null}` toggle.
    pub fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        let Some(object) = object(body)? else {
            return Ok(Self::Toggle);
        };
        match object.get("completed") {
            None | Some(Value::Null) => Ok(Self::Toggle),
            Some(value) => boolean(value)
                .map(Self::Set)
                .map_err(|problem| vec![field_error("completed", problem)]),
        }
    }
}

/// The body as a JSON object, or the single error FastAPI would give for it: `missing`
/// when there is none.
fn required_object(body: &[u8]) -> Result<Map<String, Value>, Vec<FieldError>> {
    object(body)?.ok_or_else(|| vec![FieldError::new(&["body"], "missing", "Field required")])
}

/// The body as a JSON object; `None` when there is none: empty, or JSON `null`, which
/// FastAPI takes for an absent body (a required one is `missing`, an optional one its
/// default). Otherwise the single error FastAPI would give for it.
fn object(body: &[u8]) -> Result<Option<Map<String, Value>>, Vec<FieldError>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err(vec![FieldError::new(
            &["body"],
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )]),
        Err(e) => Err(vec![FieldError::new(
            &["body"],
            "json_invalid",
            format!("JSON decode error: {e}"),
        )]),
    }
}

fn title(value: &Value) -> Result<Title, Problem> {
    Title::parse(string(value)?)
}

fn description(value: &Value) -> Result<Description, Problem> {
    Description::parse(string(value)?)
}

fn string(value: &Value) -> Result<&str, Problem> {
    value
        .as_str()
        .ok_or_else(|| Problem::new("string_type", "Input should be a valid string"))
}

fn boolean(value: &Value) -> Result<bool, Problem> {
    value
        .as_bool()
        .ok_or_else(|| Problem::new("bool_type", "Input should be a valid boolean"))
}

fn collect<T>(errors: &mut Vec<FieldError>, field: &str, result: Result<T, Problem>) -> Option<T> {
    result
        .map_err(|problem| errors.push(field_error(field, problem)))
        .ok()
}

fn field_error(field: &str, problem: Problem) -> FieldError {
    FieldError::new(&["body", field], problem.kind, problem.msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(errors: Vec<FieldError>) -> Vec<(String, String)> {
        errors
            .into_iter()
            .map(|e| (e.loc.join("."), e.kind))
            .collect()
    }

    #[test]
    fn create_reports_every_bad_field_at_once() {
        let errors = NewTask::from_json(br#"{"description": 5}"#).unwrap_err();
        assert_eq!(
            kinds(errors),
            [
                ("body.title".into(), "missing".into()),
                ("body.description".into(), "string_type".into())
            ]
        );
    }

    #[test]
    fn create_ignores_unknown_fields_and_trims() {
        let task = NewTask::from_json(br#"{"title":" a ","extra":1,"description":null}"#).unwrap();
        assert_eq!(task.title.as_str(), "a");
        assert_eq!(task.description, None);
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        for (body, kind) in [
            (&b""[..], "missing"),
            (b" null ", "missing"),
            (b"[1]", "model_attributes_type"),
            (b"\"a\"", "model_attributes_type"),
            (b"{\"title\":", "json_invalid"),
        ] {
            let errors = NewTask::from_json(body).unwrap_err();
            assert_eq!(kinds(errors), [("body".into(), kind.into())]);
        }
    }

    #[test]
    fn update_tells_null_from_absent() {
        assert_eq!(
            TaskChanges::from_json(b"{}").unwrap(),
            TaskChanges::default()
        );
        let clear = TaskChanges::from_json(br#"{"description":null}"#).unwrap();
        assert_eq!(clear.description, Some(None));
        let none = TaskChanges::from_json(b"null").unwrap_err();
        assert_eq!(kinds(none), [("body".into(), "missing".into())]);
        let bad = TaskChanges::from_json(br#"{"completed":"yes"}"#).unwrap_err();
        assert_eq!(kinds(bad), [("body.completed".into(), "bool_type".into())]);
    }

    #[test]
    fn completion_toggles_unless_told() {
        assert_eq!(Completion::from_json(b"").unwrap(), Completion::Toggle);
        assert_eq!(Completion::from_json(b"null").unwrap(), Completion::Toggle);
        assert_eq!(Completion::from_json(b"{}").unwrap(), Completion::Toggle);
        assert_eq!(
            Completion::from_json(br#"{"completed":true}"#).unwrap(),
            Completion::Set(true)
        );
        assert!(Completion::from_json(br#"{"completed":1}"#).is_err());
    }
}
