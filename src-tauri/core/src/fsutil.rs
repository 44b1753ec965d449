//! Small filesystem helpers shared by the config, quota state file, admin token and the
//! stores: atomic writes, and data that stays private to the user (0700 / 0600).
//!
//! Imports nothing of the crate.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temp file in the same directory, flushed to disk,
/// then renamed over the target. A crash leaves either the old file or the new one, never a
/// torn mix. Parent directories are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The contents of `path` if it is a regular file of at most `limit` bytes; `None` for
/// anything else. Opened without blocking, so a FIFO or a device put where a file should
/// be is refused at once instead of hanging the reader.
pub fn read_regular(path: &Path, limit: u64) -> Option<Vec<u8>> {
    read_regular_file(path, limit).ok().flatten()
}

/// Like [`read_regular`], telling why it could not read.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if metadata.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Expands a leading `~/` to the user's home directory.
pub fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => PathBuf::from(text),
    }
}

/// Creates `dir` (and its parents) readable by the user only, and tightens it to 0700
/// when it exists already (an earlier version made it 0755).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    restrict(dir, 0o700)
}

/// Makes an existing file readable and writable by the user only (0600); a missing file
/// is left alone.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    restrict(path, 0o600)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// From now on, files and directories this process creates are private to the user
/// (umask 077): logs, databases and their journals included.
pub fn private_by_default() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// This process's user id (a LaunchAgent's domain is `gui/<uid>`).
#[cfg(unix)]
pub fn user_id() -> u32 {
    rustix::process::getuid().as_raw()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_and_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(read_regular_file(&fifo, 100).is_err());
        let file = dir.path().join("file");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_regular(&file, 100).as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_regular(&file, 3), None);
        assert_eq!(
            read_regular_file(&dir.path().join("none"), 3).unwrap(),
            None
        );
    }
}
