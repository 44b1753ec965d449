//! PAI Orchestrator's core: everything a request needs on its way, with no HTTP server
//! and no desktop around it (the `pai-server` crate gives it an HTTP face, the app a tray).
//!
//! A request's path, module by module: [`wire`] (what the proxy reads of it) ->
//! [`classify`] (how demanding it is) -> [`router`] (matrix x quota -> targets) ->
//! [`queue`] (gates, waits, retries) -> [`providers`] (and [`translate`] for OpenAI-
//! compatible ones) -> [`store`] (the record). [`pipeline`] runs that path, one loop for
//! every caller; [`quota`] watches the Claude quota beside it; [`notify`] decides what the
//! desktop says. At the bottom: [`types`], [`config`], [`net`], [`fsutil`], [`bounded`], [`models`].
//!
//! Dependencies point down that list; `tests/architecture.rs` fails on a cycle.

pub mod bounded;
pub mod classify;
pub mod config;
pub mod fsutil;
pub mod models;
pub mod net;
pub mod notify;
pub mod pipeline;
pub mod providers;
pub mod queue;
pub mod quota;
pub mod router;
pub mod store;
pub mod translate;
pub mod types;
pub mod wire;

pub use pipeline::Core;
