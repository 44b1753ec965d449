//! PAI Orchestrator's core: a local Anthropic API proxy that keeps Claude Code working
//! when its quota runs out.
//!
//! A request's path through the modules: [`proxy`] (HTTP, parsing, guard) ->
//! [`classify`] -> router -> queue -> [`providers`] -> [`store`] (the record), with
//! [`quota`] beside them. Nothing here depends on Tauri; the tray app ([`app`], feature
//! `gui`) is a thin shell over [`daemon`].

pub mod admin;
#[cfg(feature = "gui")]
pub mod app;
pub mod classify;
pub mod cli;
pub mod config;
pub mod connect;
pub mod daemon;
pub mod fsutil;
pub mod logging;
pub mod net;
pub mod notify;
pub mod pipeline;
pub mod providers;
pub mod proxy;
pub mod queue;
pub mod quota;
pub mod router;
pub mod service;
pub mod status;
pub mod store;
pub mod translate;
pub mod types;
pub mod wire;
