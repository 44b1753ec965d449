//! The headless daemon as a login service: a systemd user unit on Linux, a LaunchAgent on
//! macOS (the tray app uses its own autostart instead). What is written is plain text made
//! here, so it is tested on any system; the one call that needs macOS (`launchctl`) goes
//! through [`Launchctl`], which tests replace.

use std::path::{Path, PathBuf};

use crate::cli::Paths;
use pai_core::fsutil;

/// The unit shipped in the repository, with this binary's path and the user's paths.
pub const UNIT_TEMPLATE: &str = include_str!("../../scripts/pai-orchestrator.service");

/// The LaunchAgent's label (and its file name, with `.plist`).
pub const LAUNCH_AGENT: &str = "dev.pai.orchestrator";

pub fn unit_text(binary: &Path, paths: &Paths) -> String {
    UNIT_TEMPLATE
        .replace("@BINARY@", &binary.display().to_string())
        .replace("@CONFIG@", &paths.config.display().to_string())
        .replace("@DATA_DIR@", &paths.data_dir.display().to_string())
}

/// The LaunchAgent: the headless proxy at login, restarted if it fails, its early output
/// (before its own log opens) in the data dir.
pub fn plist_text(binary: &Path, paths: &Paths) -> String {
    let string = |value: &str| format!("<string>{}</string>", xml_escape(value));
    let arguments = [
        binary.display().to_string(),
        "--headless".to_owned(),
        "--config".to_owned(),
        paths.config.display().to_string(),
        "--data-dir".to_owned(),
        paths.data_dir.display().to_string(),
    ]
    .iter()
    .map(|a| format!("    {}\n", string(a)))
    .collect::<String>();
    let log = paths.data_dir.join("logs/launchd.log");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  {label}
  <key>ProgramArguments</key>
  <array>
{arguments}  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>EnvironmentVariables</key>
  <dict>
    <key>MIMALLOC_ARENA_EAGER_COMMIT</key>
    <string>0</string>
  </dict>
  <key>ProcessType</key>
  <string>Background</string>
  <key>StandardErrorPath</key>
  {log}
</dict>
</plist>
"#,
        label = string(LAUNCH_AGENT),
        log = string(&log.display().to_string()),
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What was installed, and what to tell the user.
pub struct Installed {
    pub path: PathBuf,
    pub next: String,
}

/// Runs `launchctl` (macOS only; a test records the calls instead).
pub trait Launchctl {
    fn run(&mut self, args: &[String]) -> std::io::Result<()>;
}

/// The real `launchctl`.
pub struct SystemLaunchctl;

impl Launchctl for SystemLaunchctl {
    fn run(&mut self, args: &[String]) -> std::io::Result<()> {
        let status = std::process::Command::new("launchctl")
            .args(args)
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "launchctl {} failed ({status})",
                args.join(" ")
            )))
        }
    }
}

/// Installs the service for this system: a LaunchAgent on macOS, else a systemd unit.
pub fn install(paths: &Paths) -> std::io::Result<Installed> {
    let binary = std::env::current_exe()?;
    let home = directories::BaseDirs::new()
        .map(|d| d.home_dir().to_owned())
        .ok_or_else(|| std::io::Error::other("no home directory"))?;
    if cfg!(target_os = "macos") {
        install_launch_agent(&home, &binary, paths, user_id(), &mut SystemLaunchctl)
    } else {
        install_systemd_unit(&home, &binary, paths)
    }
}

/// `~/.config/systemd/user/pai-orchestrator.service`.
pub fn install_systemd_unit(
    home: &Path,
    binary: &Path,
    paths: &Paths,
) -> std::io::Result<Installed> {
    let path = home.join(".config/systemd/user/pai-orchestrator.service");
    fsutil::write_atomic(&path, unit_text(binary, paths).as_bytes())?;
    Ok(Installed {
        path,
        next: "Start it now and at every login with:\n  systemctl --user daemon-reload && systemctl --user enable --now pai-orchestrator".to_owned(),
    })
}

/// `~/Library/LaunchAgents/dev.pai.orchestrator.plist`, loaded at once (an older copy
/// is taken out first, so installing again applies the new one).
pub fn install_launch_agent(
    home: &Path,
    binary: &Path,
    paths: &Paths,
    uid: u32,
    launchctl: &mut dyn Launchctl,
) -> std::io::Result<Installed> {
    let path = home.join(format!("Library/LaunchAgents/{LAUNCH_AGENT}.plist"));
    fsutil::write_atomic(&path, plist_text(binary, paths).as_bytes())?;
    let domain = format!("gui/{uid}");
    // Not loaded yet is fine: there is nothing to take out.
    let _ = launchctl.run(&["bootout".to_owned(), format!("{domain}/{LAUNCH_AGENT}")]);
    launchctl.run(&["bootstrap".to_owned(), domain, path.display().to_string()])?;
    Ok(Installed {
        path,
        next: "It runs now and at every login. Stop it with:\n  launchctl bootout gui/$(id -u)/dev.pai.orchestrator".to_owned(),
    })
}

#[cfg(unix)]
fn user_id() -> u32 {
    pai_core::fsutil::user_id()
}

#[cfg(not(unix))]
fn user_id() -> u32 {
    0
}

/// Whether the service is installed for this user (systemd unit or LaunchAgent).
pub fn installed_path(home: &Path) -> Option<PathBuf> {
    [
        home.join(".config/systemd/user/pai-orchestrator.service"),
        home.join(format!("Library/LaunchAgents/{LAUNCH_AGENT}.plist")),
    ]
    .into_iter()
    .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            config: dir.join("conf & more/config.toml"),
            data_dir: dir.join("data"),
        }
    }

    #[derive(Default)]
    struct Recorded(Vec<Vec<String>>);

    impl Launchctl for Recorded {
        fn run(&mut self, args: &[String]) -> std::io::Result<()> {
            self.0.push(args.to_vec());
            Ok(())
        }
    }

    #[test]
    fn the_launch_agent_runs_the_headless_proxy_at_login() {
        let home = tempfile::tempdir().unwrap();
        let paths = paths(home.path());
        let binary =
            Path::new("/Applications/PAI Orchestrator.app/Contents/MacOS/pai-orchestrator");
        let mut launchctl = Recorded::default();
        let installed =
            install_launch_agent(home.path(), binary, &paths, 501, &mut launchctl).unwrap();
        assert!(installed
            .path
            .ends_with("Library/LaunchAgents/dev.pai.orchestrator.plist"));
        let text = std::fs::read_to_string(&installed.path).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist"));
        assert!(text.contains("<key>Label</key>\n  <string>dev.pai.orchestrator</string>"));
        assert!(text.contains(
            "<string>/Applications/PAI Orchestrator.app/Contents/MacOS/pai-orchestrator</string>\n    <string>--headless</string>"
        ));
        assert!(
            text.contains("conf &amp; more/config.toml</string>"),
            "{text}"
        );
        assert!(text.contains("<key>RunAtLoad</key>\n  <true/>"));
        assert!(text.contains("<key>SuccessfulExit</key>\n    <false/>"));
        assert!(text.contains("data/logs/launchd.log</string>"));
        assert_eq!(text.matches("<string>").count(), 10);
        assert_eq!(
            launchctl.0,
            [
                vec![
                    "bootout".to_owned(),
                    "gui/501/dev.pai.orchestrator".to_owned()
                ],
                vec![
                    "bootstrap".to_owned(),
                    "gui/501".to_owned(),
                    installed.path.display().to_string()
                ],
            ]
        );
        assert_eq!(installed_path(home.path()), Some(installed.path));
    }

    #[test]
    fn the_systemd_unit_names_this_binary_and_the_users_paths() {
        let home = tempfile::tempdir().unwrap();
        let paths = paths(home.path());
        let installed =
            install_systemd_unit(home.path(), Path::new("/usr/bin/pai-orchestrator"), &paths)
                .unwrap();
        let text = std::fs::read_to_string(&installed.path).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/pai-orchestrator --headless --config "));
        assert!(!text.contains('@'));
        assert_eq!(installed_path(home.path()), Some(installed.path));
    }
}
