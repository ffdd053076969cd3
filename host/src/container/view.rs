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
    /// `rest` (absolute, inside the mount) is under the bind mount source `base`.
    Bind { base: PathBuf, rest: PathBuf },
    /// Under a mount the shim cannot look into before the container exists.
    Hidden,
}

impl Located {
    /// The path on the host, if it can be seen now.
    pub fn host_path(&self) -> Option<PathBuf> {
        match self {
            Self::Root { base, rest } | Self::Bind { base, rest } => {
                Some(base.join(rest.strip_prefix("/").unwrap_or(rest)))
            }
            Self::Hidden => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Mount {
    destination: PathBuf,
    /// The source of a bind mount; `None` for other kinds.
    bind_source: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ContainerView {
    root: PathBuf,
    /// In the spec's order: a later mount covers an earlier one at the same place.
    mounts: Vec<Mount>,
}

impl ContainerView {
    /// The view of a container with root filesystem `root` (on the host) and `spec`'s mounts.
    pub fn new(root: &Path, spec: &Spec) -> Self {
        let mounts = spec
            .mounts()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|m| m.destination() != Path::new("/"))
            .map(|m| {
                let bind = m.typ().as_deref() == Some("bind")
                    || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
                Mount {
                    destination: m.destination().clone(),
                    bind_source: m.source().clone().filter(|_| bind),
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

    /// Where the absolute container path `path` will be: the deepest mount that holds it
    /// (the last of equals), else the root filesystem.
    pub fn locate(&self, path: &Path) -> Located {
        let path = Path::new("/").join(path);
        let covering = self
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| path.starts_with(&m.destination))
            .max_by_key(|(i, m)| (m.destination.components().count(), *i));
        match covering {
            None => Located::Root { base: self.root.clone(), rest: path },
            Some((_, mount)) => match &mount.bind_source {
                Some(source) => Located::Bind {
                    base: source.clone(),
                    rest: Path::new("/").join(path.strip_prefix(&mount.destination).unwrap_or(Path::new(""))),
                },
                None => Located::Hidden,
            },
        }
    }

    /// The host path of the container path `path`, if it can be seen now.
    pub fn host_path(&self, path: &Path) -> Option<PathBuf> {
        self.locate(path).host_path()
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
                { "destination": "/data", "type": "bind", "source": "/srv/later", "options": ["rbind"] },
                { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" },
            ],
        }))
        .unwrap();
        let view = ContainerView::new(Path::new("/bundle/rootfs"), &spec);
        let at = |p: &str| view.host_path(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(at("/app/m.wasm").as_deref(), Some("/bundle/rootfs/app/m.wasm"));
        assert_eq!(at("/data/m.wasm").as_deref(), Some("/srv/later/m.wasm"));
        assert_eq!(at("/data/deep/m.wasm").as_deref(), Some("/srv/two/m.wasm"));
        assert_eq!(at("/datax/m.wasm").as_deref(), Some("/bundle/rootfs/datax/m.wasm"));
        assert_eq!(at("/tmp/m.wasm"), None);
        assert_eq!(
            view.locate(Path::new("/data")),
            Located::Bind { base: "/srv/later".into(), rest: "/".into() }
        );
    }
}
