//! Whether a plugin file and its directory may be trusted: owned by root (or by the user
//! the shim runs as, which gains nothing by loading it) and not writable by group or
//! others.
//!
//! Listing plugins ([`check_dir`], [`check_file`]) checks paths. Loading one checks what
//! will be loaded, without races ([`open_trusted`]): the file is opened without following
//! a symbolic link, its owner and mode are read from the open descriptor, every directory
//! from it up to `/` is checked (someone who can write to one of them could swap what is
//! below), and the caller loads that very descriptor (`/proc/self/fd/N`), whatever has
//! happened to the path since.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

    #[error("{path} is a symbolic link; install the plugin file itself in the engine directory")]
    Symlink { path: String },

    #[error(
        "{path} is in directory {dir}, which is {why}: whoever can write there can replace the plugin; \
         fix the directory or move the engine directory"
    )]
    UnsafeParent { path: String, dir: String, why: String },
}

/// Opens a plugin file for loading, after checking it and every directory above it.
pub fn open_trusted(file: &Path) -> Result<OwnedFd, TrustError> {
    let path = || file.display().to_string();
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(file)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => TrustError::Symlink { path: path() },
            _ => TrustError::Inspect { path: path(), source },
        })?;
    let meta = opened.metadata().map_err(|source| TrustError::Inspect { path: path(), source })?;
    if !meta.is_file() {
        return Err(TrustError::NotAFile { path: path() });
    }
    check_owner_and_mode(file, &meta)?;
    // Where the descriptor really is (no link left in it), checked up to the root.
    let real = fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd()))
        .map_err(|source| TrustError::Inspect { path: path(), source })?;
    for dir in real.ancestors().skip(1) {
        check_parent(file, dir)?;
    }
    Ok(opened.into())
}

/// A directory above a plugin: root's (or the shim user's), and writable by no one else
/// unless sticky (as `/tmp`: others cannot rename or remove what root put there).
fn check_parent(file: &Path, dir: &Path) -> Result<(), TrustError> {
    let unsafe_parent = |why: String| TrustError::UnsafeParent {
        path: file.display().to_string(),
        dir: dir.display().to_string(),
        why,
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| unsafe_parent(format!("unreadable ({e})")))?;
    if !meta.is_dir() {
        return Err(unsafe_parent("not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(unsafe_parent(format!("owned by uid {}", meta.uid())));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(unsafe_parent(format!("writable by group or others (mode {mode:04o})")));
    }
    Ok(())
}

/// Checks an engine directory.
pub fn check_dir(dir: &Path) -> Result<(), TrustError> {
    let meta = inspect(dir)?;
    if !meta.is_dir() {
        return Err(TrustError::NotADirectory { path: dir.display().to_string() });
    }
    check_owner_and_mode(dir, &meta)
}

/// Checks a plugin file, not following a symbolic link: loading refuses one
/// ([`open_trusted`]), and a launcher that already loaded the file it leads to would
/// otherwise be used again.
pub fn check_file(file: &Path) -> Result<(), TrustError> {
    let meta = fs::symlink_metadata(file)
        .map_err(|source| TrustError::Inspect { path: file.display().to_string(), source })?;
    if meta.file_type().is_symlink() {
        return Err(TrustError::Symlink { path: file.display().to_string() });
    }
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
    fn loading_refuses_links_and_unsafe_parents() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("x.so");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        open_trusted(&file).unwrap();

        let link = dir.path().join("y.so");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(open_trusted(&link), Err(TrustError::Symlink { .. })));

        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        let inner = open.join("engines");
        fs::create_dir(&inner).unwrap();
        let plugin = inner.join("z.so");
        fs::write(&plugin, b"z").unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&plugin, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_trusted(&plugin).unwrap_err().to_string();
        assert!(err.contains("writable by group or others (mode 0777)") && err.contains("open"), "{err}");
        // A sticky directory, as /tmp, is safe above root's own directories.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        open_trusted(&plugin).unwrap();
    }

    #[test]
    fn refuses_wrong_kinds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(check_file(dir.path()), Err(TrustError::NotAFile { .. })));
        assert!(matches!(check_dir(&dir.path().join("missing")), Err(TrustError::Inspect { .. })));
    }
}
