//! A real llama.cpp server (`xllamacpp` from PyPI) with SmolLM2-135M, as a stand-in for
//! LM Studio: it speaks both OpenAI's Chat Completions and Anthropic's Messages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::binary::repo_root;
use crate::clients::python;

pub struct LlamaServer {
    pub port: u16,
    _child: Child,
}

/// The test model (`$PAI_GGUF` overrides), unpacked by `scripts/setup.sh`.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("PAI_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/.models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh --tests",
        path.display()
    );
    path
}

impl LlamaServer {
    pub async fn start() -> LlamaServer {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/python/llama_server.py"))
            .arg(model_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("llama.cpp's server did not start within 60 s")
            .unwrap()
            .expect("llama.cpp's server exited");
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {ready}"));
        LlamaServer {
            port,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
