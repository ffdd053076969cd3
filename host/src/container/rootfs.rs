//! The container's root filesystem: containerd passes the snapshot mounts in the create
//! request; the launcher worker that creates the container mounts them at
//! `<bundle>/rootfs` (in the shim's mount namespace, so they outlive the worker) and the
//! shim server unmounts them on delete.
//!
//! Mounting happens in the worker, a single-threaded process, because long overlay
//! options need a `chdir` (to shorten paths below the kernel's page-size limit), which a
//! multi-threaded shim must not do.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One mount from containerd's create request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootfsMount {
    pub fs_type: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Mount options that are flags; the rest is passed to the filesystem as data.
const FLAGS: [(&str, libc::c_ulong, bool); 12] = [
    ("ro", libc::MS_RDONLY, false),
    ("rw", libc::MS_RDONLY, true),
    ("bind", libc::MS_BIND, false),
    ("rbind", libc::MS_BIND | libc::MS_REC, false),
    ("nosuid", libc::MS_NOSUID, false),
    ("suid", libc::MS_NOSUID, true),
    ("nodev", libc::MS_NODEV, false),
    ("dev", libc::MS_NODEV, true),
    ("noexec", libc::MS_NOEXEC, false),
    ("exec", libc::MS_NOEXEC, true),
    ("noatime", libc::MS_NOATIME, false),
    ("relatime", libc::MS_RELATIME, false),
];

/// Mounts every snapshot mount at `target`, in order.
pub fn mount_all(target: &Path, mounts: &[RootfsMount]) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    for m in mounts {
        mount_one(target, m)
            .map_err(|e| format!("cannot mount the container's rootfs ({} {}): {e}", m.fs_type, m.source))?;
    }
    Ok(())
}

fn mount_one(target: &Path, m: &RootfsMount) -> std::io::Result<()> {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    for option in &m.options {
        match FLAGS.iter().find(|(name, ..)| name == option) {
            Some((_, flag, true)) => flags &= !flag,
            Some((_, flag, false)) => flags |= flag,
            None => data.push(option.clone()),
        }
    }
    let mut data = data.join(",");
    let page = 4096;
    if m.fs_type == "overlay" && data.len() >= page {
        let dir = common_dir(&data);
        std::env::set_current_dir(&dir)?;
        data = data.replace(&format!("{}/", dir.display()), "");
    }
    let c = |s: &str| CString::new(s).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput));
    let (source, fs_type, data) = (c(&m.source)?, c(&m.fs_type)?, c(&data)?);
    let target =
        CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(source.as_ptr(), target.as_ptr(), fs_type.as_ptr(), flags, data.as_ptr().cast())
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The deepest directory that holds every path in an overlay option string.
fn common_dir(data: &str) -> PathBuf {
    let paths: Vec<&str> = data
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
        .flat_map(|v| v.split(':'))
        .filter(|p| p.starts_with('/'))
        .collect();
    let mut common = PathBuf::from(paths.first().copied().unwrap_or("/"));
    common.pop();
    while !paths.iter().all(|p| Path::new(p).starts_with(&common)) {
        common.pop();
    }
    common
}

/// Unmounts everything at `<bundle>/rootfs` (lazily, so a busy mount cannot block delete).
pub fn unmount(bundle: &Path) {
    let Ok(target) = CString::new(bundle.join("rootfs").as_os_str().as_encoded_bytes()) else { return };
    // SAFETY: umount2 on a NUL-terminated path; stops when nothing is mounted there.
    while unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_dir_of_overlay_options() {
        let data = "lowerdir=/var/lib/c/snapshots/2/fs:/var/lib/c/snapshots/1/fs,upperdir=/var/lib/c/snapshots/3/fs,workdir=/var/lib/c/snapshots/3/work";
        assert_eq!(common_dir(data), PathBuf::from("/var/lib/c/snapshots"));
    }

    #[test]
    fn bind_mounts_a_directory_and_unmounts_it() {
        let bundle = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("marker"), "x").unwrap();
        let mount = RootfsMount {
            fs_type: "bind".into(),
            source: source.path().display().to_string(),
            options: vec!["rbind".into(), "ro".into()],
        };
        mount_all(&bundle.path().join("rootfs"), &[mount]).unwrap();
        assert!(bundle.path().join("rootfs/marker").exists());
        unmount(bundle.path());
        assert!(!bundle.path().join("rootfs/marker").exists());
    }
}
