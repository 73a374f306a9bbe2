//! The task API's wire types, as the FastAPI backend it replaces served them.
//!
//! These are what goes over the wire, not what the service validates: tasks-service parses
//! request bodies field by field into its own domain types so it can answer FastAPI-shaped 422s.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// A task's id: a positive 64-bit integer assigned by the database.
pub type TaskId = i64;

/// A task as every endpoint returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub user_id: String,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    /// RFC 3339, UTC, always with microseconds.
    #[serde(with = "rfc3339_micros")]
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC, always with microseconds.
    #[serde(with = "rfc3339_micros")]
    pub updated_at: DateTime<Utc>,
}

/// Timestamps always carry six fractional digits (`2026-11-25T04:05:15.225000Z`), the
/// precision PostgreSQL stores: chrono's default drops trailing zeros, so one task would say
/// `.225Z` and the next `.247479Z`, which trips clients that parse a fixed format.
mod rfc3339_micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(deserializer)
    }
}

/// Body of `POST /api/{user_id}/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTask {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `PUT /api/{user_id}/tasks/{id}`: every field optional; absent fields are unchanged.
/// `description: Some(None)` (JSON `null`) clears the description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
}

/// Optional body of `PATCH /api/{user_id}/tasks/{id}/complete`: `None` toggles, `Some` sets,
/// so a retried request with a value is idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
}

/// Tells a present JSON `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The list's `status` query parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    #[default]
    All,
    Pending,
    Completed,
}

/// The list's `sort` query parameter: `created` (oldest first), `-created` (newest first),
/// `title` (A to Z) or `updated` (most recently changed first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    #[serde(rename = "created")]
    Created,
    #[serde(rename = "-created")]
    CreatedDesc,
    #[serde(rename = "title")]
    Title,
    #[serde(rename = "updated")]
    Updated,
}

impl StatusFilter {
    /// Every accepted value, as written in a query string.
    pub const VALUES: [&'static str; 3] = ["all", "pending", "completed"];

    /// The value as written in a query string.
    pub fn as_str(self) -> &'static str {
        Self::VALUES[self as usize]
    }
}

impl SortOrder {
    /// Every accepted value, as written in a query string.
    pub const VALUES: [&'static str; 4] = ["created", "-created", "title", "updated"];

    /// The value as written in a query string.
    pub fn as_str(self) -> &'static str {
        Self::VALUES[self as usize]
    }
}

impl fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_carry_microseconds() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T04:05:15.225Z")
            .unwrap()
            .to_utc();
        let task = Task {
            id: 1,
            user_id: "u".into(),
            title: "t".into(),
            description: None,
            completed: false,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["created_at"], "2026-11-25T04:05:15.225000Z");
        let back: Task = serde_json::from_value(json).unwrap();
        assert_eq!(back, task);
    }

    #[test]
    fn update_tells_null_from_absent() {
        let absent: UpdateTask = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.description, None);
        let null: UpdateTask = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(null.description, Some(None));
    }

    #[test]
    fn query_values_match_serde_names() {
        for value in [
            SortOrder::Created,
            SortOrder::CreatedDesc,
            SortOrder::Title,
            SortOrder::Updated,
        ] {
            assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
        }
        for value in [
            StatusFilter::All,
            StatusFilter::Pending,
            StatusFilter::Completed,
        ] {
            assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
        }
    }
}
