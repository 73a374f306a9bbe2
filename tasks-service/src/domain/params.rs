//! Path and query parameters: the task id and the list's filters and paging.

use proto_shared::{FieldError, SortOrder, StatusFilter, TaskId};

/// Parses the `{id}` path segment, still percent-encoded: a positive 64-bit integer. Decoded
/// first, since FastAPI routes on the decoded path (`/tasks/%31` is task 1).
pub fn parse_task_id(raw: &str) -> Result<TaskId, Vec<FieldError>> {
    let loc = ["path", "task_id"];
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    match parse_int(&decoded) {
        IntParse::Value(id) if id > 0 => Ok(id),
        IntParse::Value(_) | IntParse::BelowRange => Err(vec![FieldError::new(
            &loc,
            "greater_than",
            "Input should be greater than 0",
        )]),
        // Ids are PostgreSQL `bigint`s: none lies beyond that.
        IntParse::AboveRange => Err(vec![at_most(&loc, i64::MAX)]),
        IntParse::NotAnInteger => Err(vec![not_an_integer(&loc)]),
    }
}

/// The list's query: `status`, `sort`, `limit` (1 to [`ListParams::MAX_LIMIT`], default
/// [`ListParams::DEFAULT_LIMIT`]) and `offset` (0 or more, default 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParams {
    pub status: StatusFilter,
    pub sort: SortOrder,
    pub limit: i64,
    pub offset: i64,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            status: StatusFilter::All,
            sort: SortOrder::Created,
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl ListParams {
    /// Page size when `limit` is not given.
    pub const DEFAULT_LIMIT: i64 = 100;
    /// Largest page a client may ask for: bounds the work one request can cause.
    pub const MAX_LIMIT: i64 = 500;

    /// Parses a raw (still percent-encoded) query string. Unknown parameters are ignored and
    /// the last of repeated ones wins, as in FastAPI; every bad one is reported.
    pub fn from_query(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut params = Self::default();
        let mut errors = Vec::new();
        let mut last = std::collections::HashMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            last.insert(name, value);
        }
        if let Some(raw) = last.get("status") {
            match StatusFilter::VALUES.iter().position(|v| v == raw) {
                Some(0) => params.status = StatusFilter::All,
                Some(1) => params.status = StatusFilter::Pending,
                Some(_) => params.status = StatusFilter::Completed,
                None => errors.push(enum_error("status", &StatusFilter::VALUES)),
            }
        }
        if let Some(raw) = last.get("sort") {
            match SortOrder::VALUES.iter().position(|v| v == raw) {
                Some(0) => params.sort = SortOrder::Created,
                Some(1) => params.sort = SortOrder::CreatedDesc,
                Some(2) => params.sort = SortOrder::Title,
                Some(_) => params.sort = SortOrder::Updated,
                None => errors.push(enum_error("sort", &SortOrder::VALUES)),
            }
        }
        if let Some(raw) = last.get("limit") {
            match bounded("limit", raw, 1, Self::MAX_LIMIT) {
                Ok(limit) => params.limit = limit,
                Err(e) => errors.push(e),
            }
        }
        if let Some(raw) = last.get("offset") {
            match bounded("offset", raw, 0, i64::MAX) {
                Ok(offset) => params.offset = offset,
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }
}

/// An integer's text, read: its value, or on which side of the 64-bit range it lies (pydantic
/// reads any size, so it reports such a number against the field's own bound, and so do we).
enum IntParse {
    Value(i64),
    AboveRange,
    BelowRange,
    NotAnInteger,
}

/// An optional sign then ASCII digits; anything else (spaces, `1.0`, `1e3`) is not an integer.
fn parse_int(raw: &str) -> IntParse {
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return IntParse::NotAnInteger;
    }
    match raw.parse::<i64>() {
        Ok(value) => IntParse::Value(value),
        // Only its size can fail a text of digits now.
        Err(_) if raw.starts_with('-') => IntParse::BelowRange,
        Err(_) => IntParse::AboveRange,
    }
}

fn bounded(name: &str, raw: &str, min: i64, max: i64) -> Result<i64, FieldError> {
    let loc = ["query", name];
    match parse_int(raw) {
        IntParse::Value(v) if (min..=max).contains(&v) => Ok(v),
        IntParse::Value(v) if v < min => Err(at_least(&loc, min)),
        IntParse::BelowRange => Err(at_least(&loc, min)),
        IntParse::Value(_) | IntParse::AboveRange => Err(at_most(&loc, max)),
        IntParse::NotAnInteger => Err(not_an_integer(&loc)),
    }
}

fn not_an_integer(loc: &[&str]) -> FieldError {
    FieldError::new(
        loc,
        "int_parsing",
        "Input should be a valid integer, unable to parse string as an integer",
    )
}

fn at_least(loc: &[&str], min: i64) -> FieldError {
    FieldError::new(
        loc,
        "greater_than_equal",
        format!("Input should be greater than or equal to {min}"),
    )
}

fn at_most(loc: &[&str], max: i64) -> FieldError {
    FieldError::new(
        loc,
        "less_than_equal",
        format!("Input should be less than or equal to {max}"),
    )
}

fn enum_error(name: &str, values: &[&str]) -> FieldError {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    let (last, rest) = quoted.split_last().expect("enums have values");
    FieldError::new(
        &["query", name],
        "enum",
        format!("Input should be {} or {last}", rest.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_positive_i64s() {
        assert_eq!(parse_task_id("42"), Ok(42));
        assert_eq!(parse_task_id("+7"), Ok(7));
        for (raw, kind) in [
            ("0", "greater_than"),
            ("-3", "greater_than"),
            ("abc", "int_parsing"),
            ("1.5", "int_parsing"),
            ("", "int_parsing"),
            ("9223372036854775808", "less_than_equal"),
            ("-99999999999999999999", "greater_than"),
        ] {
            let errors = parse_task_id(raw).unwrap_err();
            assert_eq!(errors[0].kind, kind, "{raw:?}");
            assert_eq!(errors[0].loc, ["path", "task_id"]);
        }
    }

    #[test]
    fn list_query_defaults_and_limits() {
        assert_eq!(ListParams::from_query(""), Ok(ListParams::default()));
        let p =
            ListParams::from_query("status=pending&sort=-created&limit=500&offset=3&x=1").unwrap();
        assert_eq!(p.status, StatusFilter::Pending);
        assert_eq!(p.sort, SortOrder::CreatedDesc);
        assert_eq!((p.limit, p.offset), (500, 3));
        let p = ListParams::from_query("sort=%2Dcreated").unwrap();
        assert_eq!(p.sort, SortOrder::CreatedDesc, "percent-decoded");
    }

    #[test]
    fn every_bad_query_parameter_is_reported() {
        let errors = ListParams::from_query("status=done&sort=x&limit=0&offset=-1").unwrap_err();
        let got: Vec<_> = errors
            .iter()
            .map(|e| (e.loc[1].as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("status", "enum"),
                ("sort", "enum"),
                ("limit", "greater_than_equal"),
                ("offset", "greater_than_equal")
            ]
        );
        assert_eq!(
            errors[0].msg,
            "Input should be 'all', 'pending' or 'completed'"
        );
        let errors = ListParams::from_query("limit=501").unwrap_err();
        assert_eq!(errors[0].kind, "less_than_equal");
    }

    /// pydantic reads an integer of any size and judges it by the field's own bounds, so a
    /// number beyond 64 bits is reported against those, not against the 64-bit range.
    #[test]
    fn integers_beyond_64_bits_are_judged_by_the_fields_bounds() {
        for (query, kind, msg) in [
            (
                "limit=99999999999999999999",
                "less_than_equal",
                "Input should be less than or equal to 500",
            ),
            (
                "limit=-99999999999999999999",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            ),
            (
                "offset=-99999999999999999999",
                "greater_than_equal",
                "Input should be greater than or equal to 0",
            ),
            (
                "offset=99999999999999999999",
                "less_than_equal",
                "Input should be less than or equal to 9223372036854775807",
            ),
        ] {
            let errors = ListParams::from_query(query).unwrap_err();
            assert_eq!(
                (errors[0].kind.as_str(), errors[0].msg.as_str()),
                (kind, msg),
                "{query}"
            );
        }
    }
}
