//! Whether a plugin file and its directory may be trusted: owned by root (or by the user
//! the shim runs as, which gains nothing by loading it) and not writable by group or
//! others. Symbolic links are followed; the target is what is checked.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot inspect {path}: {source}")]
    Inspect { path: String, source: std::io::Error },

    #[error("{path} is not a regular file")]
    NotAFile { path: String },

    #[error("{path} is not a directory")]
    NotADirectory { path: String },

    #[error(
        "{path} is owned by uid {uid}, not root; plugins run with the shim's privileges: run `chown root {path}`"
    )]
    Owner { path: String, uid: u32 },

    #[error("{path} is writable by group or others (mode {mode:04o}); run `chmod go-w {path}`")]
    Writable { path: String, mode: u32 },
}

/// Checks an engine directory.
pub fn check_dir(dir: &Path) -> Result<(), TrustError> {
    let meta = inspect(dir)?;
    if !meta.is_dir() {
        return Err(TrustError::NotADirectory { path: dir.display().to_string() });
    }
    check_owner_and_mode(dir, &meta)
}

/// Checks a plugin file.
pub fn check_file(file: &Path) -> Result<(), TrustError> {
    let meta = inspect(file)?;
    if !meta.is_file() {
        return Err(TrustError::NotAFile { path: file.display().to_string() });
    }
    check_owner_and_mode(file, &meta)
}

fn inspect(path: &Path) -> Result<fs::Metadata, TrustError> {
    fs::metadata(path).map_err(|source| TrustError::Inspect { path: path.display().to_string(), source })
}

fn check_owner_and_mode(path: &Path, meta: &fs::Metadata) -> Result<(), TrustError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(TrustError::Owner { path: path.display().to_string(), uid: meta.uid() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable { path: path.display().to_string(), mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn refuses_group_or_world_writable_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("x.so");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        check_dir(dir.path()).unwrap();
        check_file(&file).unwrap();

        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_file(&file).unwrap_err().to_string();
        assert!(err.contains("writable by group or others (mode 0666)"), "{err}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(check_file(&file).is_err());

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod go-w"), "{err}");
    }

    #[test]
    fn refuses_wrong_kinds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(check_file(dir.path()), Err(TrustError::NotAFile { .. })));
        assert!(matches!(check_dir(&dir.path().join("missing")), Err(TrustError::Inspect { .. })));
    }
}
