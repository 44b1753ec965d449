//! The admin token: generated on first start, stored 0600 in the data dir. The settings
//! page and the admin API need it; a web page the user visits does not have it.

use std::io::Write;
use std::path::{Path, PathBuf};

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Reads the token, creating it (owner-only) if there is none.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    let path = path(data_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_owned();
        if token.len() >= 32 {
            // An earlier version may have left it readable by others.
            if let Err(error) = pai_core::fsutil::private_file(&path) {
                tracing::warn!(%error, "cannot make the admin token private");
            }
            return Ok(token);
        }
    }
    let token = generate()?;
    pai_core::fsutil::private_dir(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

/// A new random token (64 hex digits).
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares without leaking, through timing, how much of a guess was right.
pub fn matches(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only_and_compared_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create(dir.path()).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches(&token, &token.clone()));
        assert!(!matches(&token, &token[1..]));
        assert!(!matches(&token, &"0".repeat(64)));
    }
}
