//! Container isolation with youki's `libcontainer`, and what runs inside.
//!
//! Path of a container: the shim's task service decides wasm or native from the
//! entrypoint ([`entrypoint`]), then starts a **create helper** — this binary again, as
//! `__container-create` — which, for wasm, loads the engine plugin and only then asks
//! libcontainer to build the container ([`create`]). libcontainer clones the container's
//! init process from the helper, so the init process inherits the loaded plugin (and its
//! own shared libraries, resolved on the host) before it is confined to the container's
//! root. After `pivot_root`, [`executor`] runs the wasm program in that plugin, or execs
//! the native entrypoint. The long-lived shim never loads an engine and never clones:
//! the helper is a fresh single-threaded process.
//!
//! [`lifecycle`] holds the operations the shim does in its own process on an existing
//! container (start, kill, delete, pids, stats): none of them clones; [`oom`] watches its
//! cgroup for out-of-memory kills.

pub mod create;
pub mod entrypoint;
pub mod executor;
pub mod lifecycle;
pub mod metrics;
pub mod oom;
pub mod rootfs;

use std::path::PathBuf;

/// Where libcontainer keeps container state for one containerd (by its address) and
/// namespace, so two containerds on a node never see each other's containers.
pub fn state_root(containerd_address: &str, namespace: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(containerd_address.as_bytes());
    let instance: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/run/containerd-shim-wasm").join(instance).join(namespace)
}
