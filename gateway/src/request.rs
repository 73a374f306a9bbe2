//! The vocabulary every layer reads a request with: the head as the client sent it
//! (`client_head.rs`), where its path sends it (`route.rs`), the header rules both
//! directions share (`headers.rs`) and who the client is (`forwarded_for.rs`). It sits
//! below the request path (`proxy.rs`), the engines and CORS, and knows nothing of them.

pub mod client_head;
pub mod forwarded_for;
pub mod headers;
pub mod route;

pub use client_head::ClientHead;
pub use forwarded_for::TrustedProxies;
pub use headers::{
    connection_may_drop, connection_too_long, decimal_length, has_valid_host,
    is_gateway_response_header, is_hop_by_hop, list_items, prepare_response,
    relays_response_header, settle_response_framing, ClientAddr,
};
pub use route::{
    api_user_segment, has_dot_segment, PublicRoute, Route, RouteClass, Router, API_PREFIX,
};
