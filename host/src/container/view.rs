//! The container's file tree as it will be after its mounts, seen from the host before
//! the container exists: a path is in the root filesystem, or in the source of the bind
//! mount of the spec that will cover it (a volume: a ConfigMap, a hostPath, an emptyDir an
//! init container filled). Under another kind of mount (a tmpfs, `/proc`) it cannot be
//! seen yet. Used to find the entrypoint ([`super::entrypoint`]) and the working
//! directory ([`super::cwd`]) where the container will find them.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;

/// Where a container path lives on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// `rest` (absolute, inside the container) is under the root filesystem `base`.
    Root { base: PathBuf, rest: PathBuf },
    /// `rest` (absolute, inside the mount; `/` for the mount itself, which may be a single
    /// file) is under the bind mount source `base`.
    Bind { base: PathBuf, rest: PathBuf, read_only: bool },
    /// Under a mount the shim cannot look into before the container exists.
    Hidden,
}

impl Located {
    /// The path on the host, if it can be seen now.
    pub fn host_path(&self) -> Option<PathBuf> {
        match self {
            Self::Root { base, rest } | Self::Bind { base, rest, .. } => match rest.strip_prefix("/") {
                // The mount itself: `base.join("")` would add a `/`, wrong for a file.
                Ok(inside) if inside.as_os_str().is_empty() => Some(base.clone()),
                Ok(inside) => Some(base.join(inside)),
                Err(_) => Some(base.join(rest)),
            },
            Self::Hidden => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Mount {
    destination: PathBuf,
    /// The source of a bind mount, and whether it is read-only; `None` for other kinds.
    bind: Option<(PathBuf, bool)>,
    /// A tmpfs: empty when the container starts.
    tmpfs: bool,
}

#[derive(Debug, Clone)]
pub struct ContainerView {
    root: PathBuf,
    /// In the spec's order: each covers what earlier ones put at or under its destination.
    mounts: Vec<Mount>,
}

impl ContainerView {
    /// The view of a container with root filesystem `root` (on the host) and `spec`'s
    /// mounts. A bind mount with a relative source is not looked into: libcontainer takes
    /// it from the init process's working directory, not the bundle as runc does.
    pub fn new(root: &Path, spec: &Spec) -> Self {
        let mounts = spec
            .mounts()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|m| m.destination() != Path::new("/"))
            .map(|m| {
                let options = m.options().as_deref().unwrap_or_default();
                let is_bind =
                    m.typ().as_deref() == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind");
                let read_only = options.iter().any(|o| o == "ro");
                Mount {
                    destination: m.destination().clone(),
                    bind: m.source().clone().filter(|s| is_bind && s.is_absolute()).map(|s| (s, read_only)),
                    tmpfs: m.typ().as_deref() == Some("tmpfs"),
                }
            })
            .collect();
        Self { root: root.to_path_buf(), mounts }
    }

    /// A view with no mounts: the root filesystem alone.
    #[cfg(test)]
    pub fn root_only(root: &Path) -> Self {
        Self { root: root.to_path_buf(), mounts: Vec::new() }
    }

    /// Where the absolute container path `path` will be: under the last mount of the spec
    /// whose destination holds it (mounts are made in order, a later one covering what is
    /// under it), else in the root filesystem.
    pub fn locate(&self, path: &Path) -> Located {
        let path = Path::new("/").join(path);
        let covering = self.mounts.iter().rev().find(|m| path.starts_with(&m.destination));
        match covering {
            None => Located::Root { base: self.root.clone(), rest: path },
            Some(Mount { destination, bind: Some((source, read_only)), .. }) => Located::Bind {
                base: source.clone(),
                rest: Path::new("/").join(path.strip_prefix(destination).unwrap_or(Path::new(""))),
                read_only: *read_only,
            },
            Some(_) => Located::Hidden,
        }
    }

    /// The destination of the tmpfs that will hold `path` below its top, if one will: a
    /// path there cannot exist when the container starts (a tmpfs starts empty).
    pub fn tmpfs_below(&self, path: &Path) -> Option<&Path> {
        let path = Path::new("/").join(path);
        let covering = self.mounts.iter().rev().find(|m| path.starts_with(&m.destination))?;
        (covering.tmpfs && covering.destination != path).then_some(covering.destination.as_path())
    }

    /// The host path of the container path `path`, if it can be seen now.
    pub fn host_path(&self, path: &Path) -> Option<PathBuf> {
        self.locate(path).host_path()
    }

    /// Whether `path` is where a mount of the spec goes: what is there is the mount's
    /// source as the host resolves it, never a link to follow inside the container.
    pub fn is_mount_point(&self, path: &Path) -> bool {
        let path = Path::new("/").join(path);
        self.mounts.iter().any(|m| m.destination == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_found_under_the_mount_that_covers_them() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": { "path": "rootfs" },
            "mounts": [
                { "destination": "/data", "type": "bind", "source": "/srv/one", "options": ["rbind"] },
                { "destination": "/data/deep", "type": "none", "source": "/srv/two", "options": ["bind", "ro"] },
                { "destination": "/opt", "type": "bind", "source": "/srv/opt", "options": ["rbind"] },
                { "destination": "/opt/deep", "type": "bind", "source": "/srv/deep", "options": ["rbind", "ro"] },
                { "destination": "/data", "type": "bind", "source": "/srv/later", "options": ["rbind"] },
                { "destination": "/app.wasm", "type": "bind", "source": "files/app.wasm", "options": ["rbind"] },
                { "destination": "/one.wasm", "type": "bind", "source": "/srv/one.wasm", "options": ["rbind"] },
                { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" },
            ],
        }))
        .unwrap();
        let view = ContainerView::new(Path::new("/bundle/rootfs"), &spec);
        let at = |p: &str| view.host_path(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(at("/app/m.wasm").as_deref(), Some("/bundle/rootfs/app/m.wasm"));
        // A later mount at /data covers the earlier /data/deep.
        assert_eq!(at("/data/deep/m.wasm").as_deref(), Some("/srv/later/deep/m.wasm"));
        assert_eq!(at("/opt/deep/m.wasm").as_deref(), Some("/srv/deep/m.wasm"));
        assert_eq!(at("/datax/m.wasm").as_deref(), Some("/bundle/rootfs/datax/m.wasm"));
        // A single file mounted: no trailing `/`. A relative source is not looked into.
        assert_eq!(at("/one.wasm").as_deref(), Some("/srv/one.wasm"));
        assert_eq!(at("/app.wasm"), None);
        assert_eq!(at("/tmp/m.wasm"), None);
        assert_eq!(
            view.locate(Path::new("/opt/deep/x")),
            Located::Bind { base: "/srv/deep".into(), rest: "/x".into(), read_only: true }
        );
    }
}
