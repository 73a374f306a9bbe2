//! The task domain: values that are valid by construction, parsed from untrusted input once.
//! The store takes these types, never raw strings, so an unchecked title cannot reach SQL.
//!
//! Every parser reports problems as pydantic-shaped [`proto_shared::FieldError`]s so the API
//! answers 422s exactly as the FastAPI backend it replaces did.

mod body;
mod fields;
mod paging;
mod params;

pub use body::{Completion, NewTask, TaskChanges};
pub use fields::{Description, Title};
pub use paging::link_header;
pub use params::{parse_task_id, ListParams};
