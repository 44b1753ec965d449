//! The Anthropic Messages API as data: what the proxy reads of a request ([`summary`]),
//! the body it holds ([`body`]: bytes, parsed only when needed),
//! which headers cross it ([`headers`]), event streams ([`sse`]), usage ([`usage`]) and
//! errors in Anthropic's shape ([`error`]), and what in a request is new to the proxy
//! ([`drift`]); the token estimate ([`tokens`]); what an answer carried that is remembered ([`trace`]). Imports nothing else of the crate: every layer
//! above speaks this.

pub mod body;
pub mod drift;
pub mod error;
pub mod headers;
pub mod sse;
pub mod summary;
pub mod tokens;
pub mod trace;
pub mod usage;

pub use error::ApiError;
