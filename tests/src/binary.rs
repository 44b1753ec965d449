//! The built `pai-orchestrator` binary as a child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The binary under test: `$PAI_BIN`, else `target/debug/pai-orchestrator` (built by the
/// test script before the tests run).
pub fn binary_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PAI_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug/pai-orchestrator");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p pai-orchestrator --no-default-features) or run scripts/test.sh",
        path.display()
    );
    path
}

/// A running binary; killed on drop.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every line it printed on stderr so far arrives here.
    pub stderr: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `pai-orchestrator --headless --config <config> --data-dir <data_dir>` and
    /// waits for the line that says where it listens.
    pub fn start(config: &Path, data_dir: &Path, envs: &[(&str, &str)]) -> Running {
        Self::spawn(Command::new(binary_path()), config, data_dir, envs)
    }

    /// The same with another binary (an installed package's).
    pub fn start_binary(binary: &Path, config: &Path, data_dir: &Path) -> Running {
        Self::spawn(Command::new(binary), config, data_dir, &[])
    }

    /// Starts it with at most `files` open files (soft and hard limit, by util-linux's
    /// `prlimit`).
    pub fn start_with_file_limit(config: &Path, data_dir: &Path, files: u32) -> Running {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={files}:{files}"))
            .arg("--")
            .arg(binary_path());
        Self::spawn(command, config, data_dir, &[])
    }

    fn spawn(
        mut command: Command,
        config: &Path,
        data_dir: &Path,
        envs: &[(&str, &str)],
    ) -> Running {
        command
            .args(["--headless", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the binary did not start; it printed: {seen:#?}"));
            if let Some(addr) = listening_addr(&line) {
                break addr;
            }
            seen.push(line);
        };
        Running {
            child,
            addr,
            stderr: rx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the address from the "proxy listening" log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("proxy listening") {
        return None;
    }
    let start = line.find("local_addr=")? + "local_addr=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}
