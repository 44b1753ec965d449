//! The real tray app's settings window (WebKitGTK), under Xvfb, driven over WebDriver with
//! `tauri-driver`: it shows the quota, and a threshold changed there is saved to the
//! config file. Needs the GUI binary (`$PAI_GUI_BIN`, built by scripts/test.sh). Also: the
//! command-line binary hands over to the tray app installed next to it, and runs headless
//! when there is none.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use pai_e2e::webdriver::Session;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Xvfb on a free display; returns it and the display name.
fn xvfb() -> (Killed, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is missing: run scripts/setup.sh --tests");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Killed(child), format!(":{}", line.trim()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_window_shows_the_quota_and_saves_a_threshold() {
    let app = std::env::var("PAI_GUI_BIN").expect(
        "PAI_GUI_BIN is not set: scripts/test.sh builds the tray app and points this test at it",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let (_xvfb, display) = xvfb();
    let driver_port = free_port();
    let native_port = free_port();
    let _driver = Killed(
        Command::new("tauri-driver")
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("HOME", dir.path())
            .env("PAI_SHOW_SETTINGS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver is missing: run scripts/setup.sh --tests"),
    );
    let driver = format!("http://127.0.0.1:{driver_port}");
    // Wait for the driver to listen (bounded).
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while http.get(format!("{driver}/status")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tauri-driver did not start"
        );
        tokio::task::yield_now().await;
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let args = vec![
        "--listen".to_owned(),
        listen.clone(),
        "--config".to_owned(),
        config.display().to_string(),
        "--data-dir".to_owned(),
        dir.path().join("data").display().to_string(),
    ];
    let session = Session::start(&driver, &app, &args).await;

    let state = session.find("#quota-state").await;
    assert_eq!(session.text(&state).await, "unknown");
    let reason = session.find("#quota-reason").await;
    assert!(
        session.text(&reason).await.contains("no"),
        "the quota's reason is shown"
    );

    session.click(&session.find("#tab-routing").await).await;
    let caution = session.find("#t-caution").await;
    // Wait until the page has loaded the config into the field.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while session
        .script("return document.querySelector('#t-caution').value")
        .await
        != "50"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the thresholds never loaded"
        );
        tokio::task::yield_now().await;
    }
    session.clear(&caution).await;
    session.type_text(&caution, "55").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while session
        .script("return document.querySelector('#save').disabled")
        .await
        != false
    {
        assert!(tokio::time::Instant::now() < deadline, "Save never enabled");
        tokio::task::yield_now().await;
    }
    session.click(&session.find("#save").await).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let saved = std::fs::read_to_string(&config).unwrap_or_default();
        if saved.contains("caution = 55") {
            assert!(
                saved.starts_with("# PAI Orchestrator configuration."),
                "comments kept"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the threshold was not saved: {saved}"
        );
        tokio::task::yield_now().await;
    }
    // The window says so, and still shows the new value.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let saved = session
            .script("return document.querySelector('#saved').textContent")
            .await;
        if saved.as_str().is_some_and(|s| s.starts_with("Saved")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the window never said Saved: {saved}"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        session
            .script("return document.querySelector('#t-caution').value")
            .await,
        "55"
    );
    if let Ok(dir) = std::env::var("PAI_SCREENSHOTS") {
        std::fs::write(format!("{dir}/app-window.png"), session.screenshot().await).unwrap();
    }
    // The running core has the new threshold too.
    let health: serde_json::Value = http
        .get(format!("http://{listen}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    session.quit().await;
}

#[test]
fn without_a_display_the_tray_app_runs_headless_by_itself() {
    let app = std::env::var("PAI_GUI_BIN").expect("PAI_GUI_BIN is not set: run scripts/test.sh");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(app)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = Killed(child);
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("proxy listening"));
    assert!(listening.is_some(), "it should have started headless");
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "and still be running"
    );
}

/// Starts `binary` (copied alone, or with the tray app, into a fresh directory) with a
/// display; returns it once it listens, and what it said on the way.
fn start_with_display(
    with_tray: bool,
    display: &str,
) -> (Killed, std::path::PathBuf, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(pai_e2e::binary::binary_path(), bin.join("pai-orchestrator")).unwrap();
    let tray = bin.join("pai-orchestrator-tray");
    if with_tray {
        let app =
            std::env::var("PAI_GUI_BIN").expect("PAI_GUI_BIN is not set: run scripts/test.sh");
        std::fs::copy(app, &tray).unwrap();
    }
    let mut child = Command::new(bin.join("pai-orchestrator"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let mut said = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let listening = line.contains("proxy listening");
        said.push(line);
        if listening {
            return (child, tray, said, dir);
        }
    }
    panic!("it never listened: {said:?}");
}

#[test]
fn the_command_line_binary_hands_over_to_the_tray_app_next_to_it() {
    let (_xvfb, display) = xvfb();
    let (child, tray, _, _dir) = start_with_display(true, &display);
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.0.id())).unwrap();
    assert_eq!(exe, tray, "the same process should now be the tray app");

    let (child, _, said, _dir) = start_with_display(false, &display);
    assert!(
        said.iter()
            .any(|l| l.contains("running headless") && l.contains("not installed")),
        "it should say why it runs headless: {said:?}"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.0.id())).unwrap();
    assert!(exe.ends_with("pai-orchestrator"));
}

/// Waits (at most 20 s) for `what` to hold, looking every 20 ms: for what the app does
/// without saying so on any channel a test can follow (a file it writes).
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Reads stderr until the line that says the proxy listens; panics if it ends first.
fn wait_listening(child: &mut Child) {
    let stderr = child.stderr.take().unwrap();
    let said: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.contains("proxy listening"))
        .collect();
    assert!(
        child.try_wait().unwrap().is_none(),
        "it exited instead of listening: {said:?}"
    );
}

/// Start at login as the desktop does it: the entry the app writes on its first run is
/// run — its `Exec` line, by a shell — and starts the tray app again, with the config it
/// was started with; `doctor` runs the same line and says so, and calls a broken entry
/// broken.
#[test]
fn the_start_at_login_entry_starts_the_tray_app() {
    let app = std::env::var("PAI_GUI_BIN").expect("PAI_GUI_BIN is not set: run scripts/test.sh");
    let (_xvfb, display) = xvfb();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let config = dir.path().join("my config").join("config.toml");
    std::fs::create_dir(config.parent().unwrap()).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut first = Killed(
        Command::new(&app)
            .args(["--listen", &listen, "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("DISPLAY", &display)
            .env("HOME", &home)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_listening(&mut first.0);
    let autostart = home.join(".config/autostart");
    let (entry, text) = wait_until("the first run writes its start-at-login entry", || {
        let entry = std::fs::read_dir(&autostart).ok()?.flatten().next()?.path();
        let text = std::fs::read_to_string(&entry).ok()?;
        text.contains("Exec=").then_some((entry, text))
    });
    drop(first);

    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap()
        .to_owned();
    assert!(exec.contains("--minimized"), "{exec}");
    let mut at_login = Killed(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec {exec}"))
            .env("DISPLAY", &display)
            .env("HOME", &home)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_listening(&mut at_login.0);
    let health = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pai_e2e::http::get_json(&format!("http://{listen}/health")));
    assert_eq!(
        health["status"], "ok",
        "the app started at login serves the proxy"
    );
    drop(at_login);

    let doctor = |home: &std::path::Path| {
        let out = Command::new(pai_e2e::binary::binary_path())
            .arg("doctor")
            .arg("--config")
            .arg(&config)
            .env("HOME", home)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = doctor(&home);
    assert!(
        said.contains("✓ the tray app starts at login"),
        "doctor should have run the entry: {said}"
    );
    std::fs::write(&entry, text.replace("--minimized", "--minimised")).unwrap();
    let said = doctor(&home);
    assert!(
        said.contains("✗ the start-at-login entry") && said.contains("--minimised"),
        "doctor should have found the entry broken: {said}"
    );
}
