//! The process's working directory (`process.cwd`) exists before libcontainer's init
//! changes into it: runc makes a missing one (0755, inside the container's root, after
//! the mounts), and libcontainer alone fails with "failed to unix syscall". Made from the
//! worker, before the container exists, where the container will see it
//! ([`super::view`]; [`place`] decides, [`ensure`] makes): in the root filesystem, or in the source of
//! the bind mount that will cover it (a volume). Symbolic links are resolved inside that
//! root or source (`pathrs`), never outside it. A working directory on a read-only volume
//! is not made (runc fails there too). One below a tmpfs of the spec (which starts empty)
//! is refused at create with one line: runc makes it inside the container after the
//! mounts, which libcontainer gives the shim no place to do; libcontainer alone failed
//! there with "failed to unix syscall". (Kubernetes passes volumes, memory-backed emptyDirs
//! included, as bind mounts; `ctr`'s default spec mounts tmpfs at /dev, /dev/shm and /run.)

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, PathBuf};

use libcontainer::oci_spec::runtime::Spec;

use super::entrypoint::{resolve, shown};
use super::view::{ContainerView, Located};

/// Makes `process.cwd` of `spec` if it is missing, where `view` says the container will see it.
pub fn ensure(view: &ContainerView, spec: &Spec) -> Result<(), String> {
    let Some(Place { cwd, base, rest }) = place(view, spec)? else { return Ok(()) };
    let dir = pathrs::Root::open(&base).map_err(|e| format!("cannot open {}: {e}", shown(&base)))?;
    if dir.resolve(&rest).is_ok() {
        return Ok(());
    }
    dir.mkdir_all(&rest, &Permissions::from_mode(0o755)).map(drop).map_err(|e| {
        format!(
            "the working directory {} (process.cwd) is missing and cannot be made: {e}; make it in the image or choose another",
            shown(&cwd)
        )
    })
}

/// Where the shim would make a missing working directory.
#[derive(Debug)]
pub struct Place {
    /// `process.cwd` as the spec gives it.
    cwd: PathBuf,
    /// The root filesystem or the source of the volume that will hold it, on the host.
    base: PathBuf,
    /// The directory inside `base`, links resolved as the container will.
    rest: PathBuf,
}

/// The checks on `process.cwd` and where it will be, without writing anything: `None`
/// when there is nothing the shim could make (no cwd, `/` of its base, a read-only
/// volume, a kernel file system).
pub fn place(view: &ContainerView, spec: &Spec) -> Result<Option<Place>, String> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) else { return Ok(None) };
    if !cwd.is_absolute() {
        return Err(format!(
            "the working directory {:?} (process.cwd) is not an absolute path; the OCI spec requires one",
            cwd.display()
        ));
    }
    // As the container will see it: `..` and links resolved across its root and mounts.
    let resolved = resolve(view, &cwd).ok_or_else(|| {
        format!(
            "the working directory {} (process.cwd) goes through too many symbolic links (a loop?)",
            shown(&cwd)
        )
    })?;
    let (base, rest) = match view.locate(&resolved) {
        Located::Root { base, rest } | Located::Bind { base, rest, read_only: false } => (base, rest),
        Located::Hidden => {
            return match view.tmpfs_below(&resolved) {
                Some(tmpfs) => Err(format!(
                    "the working directory {} (process.cwd) is inside the tmpfs mounted at {}, which is \
                     empty when the container starts; this shim cannot make it there (runc does): choose \
                     a directory of the image or of a volume, or the tmpfs itself",
                    shown(&cwd),
                    shown(tmpfs)
                )),
                // Under /proc, /sys and the like: there or not, as the kernel makes them.
                None => Ok(None),
            };
        }
        // Not the shim's to write: runc fails there too (EROFS).
        Located::Bind { read_only: true, .. } => return Ok(None),
    };
    if rest.components().all(|c| c == Component::RootDir) {
        return Ok(None);
    }
    Ok(Some(Place { cwd, base, rest }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// `ensure` for a container with root `root`, `process.cwd` = `cwd` and `mounts`.
    fn ensure_in(root: &Path, cwd: &str, mounts: serde_json::Value) -> Result<(), String> {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": { "cwd": cwd, "args": ["/app.wasm"], "user": { "uid": 0, "gid": 0 } },
            "root": { "path": "rootfs" },
            "mounts": mounts,
        }))
        .unwrap();
        ensure(&ContainerView::new(root, &spec), &spec)
    }

    #[test]
    fn a_missing_working_directory_is_made_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        ensure_in(&root, "/srv/app", serde_json::json!([])).unwrap();
        assert!(root.join("srv/app").is_dir());
        // A link that points out of the root is followed inside it.
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("escape")).unwrap();
        let made = ensure_in(&root, "/escape/x", serde_json::json!([]));
        assert!(!tmp.path().join("outside").exists(), "made outside the root: {made:?}");
        let err = ensure_in(&root, "relative", serde_json::json!([])).unwrap_err();
        assert!(err.contains("not an absolute path"), "{err}");
    }

    #[test]
    fn a_working_directory_on_a_volume_is_made_in_the_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, volume) = (tmp.path().join("rootfs"), tmp.path().join("volume"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&volume).unwrap();
        let mounts = serde_json::json!([
            { "destination": "/data", "type": "bind", "source": volume, "options": ["rbind", "rw"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" },
        ]);
        ensure_in(&root, "/data/work", mounts.clone()).unwrap();
        assert!(volume.join("work").is_dir());
        assert!(!root.join("data/work").exists());
        // `..` leaves the volume as it will in the container.
        ensure_in(&root, "/data/../srv", mounts.clone()).unwrap();
        assert!(root.join("srv").is_dir() && !volume.join("srv").exists());
        // A read-only volume is not written to.
        let read_only = serde_json::json!([
            { "destination": "/data", "type": "bind", "source": volume, "options": ["rbind", "ro"] },
        ]);
        ensure_in(&root, "/data/other", read_only).unwrap();
        assert!(!volume.join("other").exists());
        // Inside a tmpfs, which starts empty: refused, nothing made; the tmpfs itself is fine.
        let err = ensure_in(&root, "/tmp/work", mounts.clone()).unwrap_err();
        assert!(err.contains("inside the tmpfs mounted at /tmp"), "{err}");
        // A newline in the name stays inside the one line.
        let err = ensure_in(&root, "/tmp/two\nlines", mounts.clone()).unwrap_err();
        assert!(err.contains("/tmp/two\\nlines") && !err.contains('\n'), "{err:?}");
        assert!(!root.join("tmp/work").exists());
        ensure_in(&root, "/tmp", mounts).unwrap();
    }
}
