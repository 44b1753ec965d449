//! Test kit for PAI Orchestrator's black-box tests: mock upstreams that are real HTTP
//! servers on loopback, realistic Anthropic responses, and the proxy started in-process
//! or as the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod anthropic;
pub mod binary;
pub mod claude_api;
pub mod clients;
pub mod config;
pub mod faults;
pub mod http;
pub mod llama;
pub mod lmstudio;
pub mod mock;
pub mod openai;
pub mod proxy;
pub mod webdriver;
