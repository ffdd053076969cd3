//! The process's working directory (`process.cwd`) exists before libcontainer's init
//! changes into it: runc makes a missing one (0755, inside the container's root), and a
//! container that works under runc must work here; libcontainer alone fails with "failed
//! to unix syscall". Made from the worker, before the container exists, where the
//! container will see it: in the root filesystem, or in the source of the bind mount that
//! will cover it (a volume). Symbolic links are resolved inside that root or source
//! (`pathrs`), never outside it. A working directory under another kind of mount (a
//! tmpfs, which starts empty) is left to that mount.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;

/// Makes `process.cwd` of `spec` if it is missing; `root` is the container's root on the host.
pub fn ensure(root: &Path, spec: &Spec) -> Result<(), String> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) else { return Ok(()) };
    if !cwd.is_absolute() {
        return Err(format!(
            "the working directory {:?} (process.cwd) is not an absolute path; the OCI spec requires one",
            cwd.display()
        ));
    }
    let (base, rest) = match covering_mount(spec, &cwd) {
        Covered::Root => (root.to_path_buf(), cwd.clone()),
        Covered::Bind { source, rest } => (source, rest),
        Covered::Other => return Ok(()),
    };
    if rest.components().all(|c| c == Component::RootDir) {
        return Ok(());
    }
    let dir = pathrs::Root::open(&base).map_err(|e| format!("cannot open {}: {e}", base.display()))?;
    if dir.resolve(&rest).is_ok() {
        return Ok(());
    }
    dir.mkdir_all(&rest, &Permissions::from_mode(0o755)).map(drop).map_err(|e| {
        format!(
            "the working directory {} (process.cwd) is missing and cannot be made: {e}; make it in the image or choose another",
            cwd.display()
        )
    })
}

enum Covered {
    /// No mount of the spec covers it: it is in the root filesystem.
    Root,
    /// The bind mount of `source` covers it; `rest` is its path inside the mount.
    Bind { source: PathBuf, rest: PathBuf },
    /// A mount the shim cannot look into before the container exists.
    Other,
}

/// The mount of the spec the container will see `cwd` in: the last one whose
/// destination holds it, deepest first (as later and deeper mounts cover earlier ones).
fn covering_mount(spec: &Spec, cwd: &Path) -> Covered {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let covering = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| cwd.starts_with(m.destination()) && m.destination() != Path::new("/"))
        .max_by_key(|(i, m)| (m.destination().components().count(), *i));
    let Some((_, mount)) = covering else { return Covered::Root };
    let bind = mount.typ().as_deref() == Some("bind")
        || mount.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
    match (bind, mount.source()) {
        (true, Some(source)) => Covered::Bind {
            source: source.clone(),
            rest: Path::new("/").join(cwd.strip_prefix(mount.destination()).unwrap_or(Path::new(""))),
        },
        _ => Covered::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cwd: &str, mounts: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": { "cwd": cwd, "args": ["/app.wasm"], "user": { "uid": 0, "gid": 0 } },
            "root": { "path": "rootfs" },
            "mounts": mounts,
        }))
        .unwrap()
    }

    #[test]
    fn a_missing_working_directory_is_made_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        ensure(&root, &spec("/srv/app", serde_json::json!([]))).unwrap();
        assert!(root.join("srv/app").is_dir());
        // A link that points out of the root is followed inside it.
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("escape")).unwrap();
        let made = ensure(&root, &spec("/escape/x", serde_json::json!([])));
        assert!(!tmp.path().join("outside").exists(), "made outside the root: {made:?}");
        let err = ensure(&root, &spec("relative", serde_json::json!([]))).unwrap_err();
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
        ensure(&root, &spec("/data/work", mounts.clone())).unwrap();
        assert!(volume.join("work").is_dir());
        assert!(!root.join("data/work").exists());
        // A tmpfs starts empty: nothing to make before it exists.
        ensure(&root, &spec("/tmp/work", mounts)).unwrap();
        assert!(!root.join("tmp/work").exists());
    }
}
