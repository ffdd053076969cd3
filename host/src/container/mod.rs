//! Container isolation with youki's `libcontainer`, and what runs inside.
//!
//! Path of a container: a launcher worker — a process forked from a single-threaded
//! launcher that, for an engine, has the engine's plugin loaded (see [`crate::launcher`])
//! — mounts the rootfs, decides wasm or native from the entrypoint ([`entrypoint`], found
//! where the container will see it, volumes included: [`view`]), checks the environment
//! ([`env`]) and the AppArmor profile against the host, makes a missing working
//! directory as runc does ([`cwd`]) and asks libcontainer to build the container
//! ([`create`]). libcontainer clones the container's init process from the worker, so the
//! init process inherits the loaded plugin (and its own shared libraries, resolved on the
//! host) before it is confined to the container's root; [`inherited`] is what else it
//! inherits and must drop. After `pivot_root`, [`executor`] gives the process the
//! capabilities a native program would have after `execve` ([`capabilities`]) and its
//! AppArmor profile ([`apparmor`]), creates the engine (fault signals another process
//! sends are kept from its trap handlers: [`fault_signals`]) and, on Start, runs the wasm
//! program in it, or execs the native entrypoint. The shim server never loads an engine
//! and never clones.
//!
//! [`lifecycle`] holds the operations on an existing container (start, kill, pause,
//! update, remove, pids, stats) and where each runs; [`exec`] starts a process in a
//! running native container; [`oom`] watches the cgroup for out-of-memory kills;
//! [`metrics`] turns cgroup statistics into containerd's.

pub mod apparmor;
pub mod capabilities;
pub mod create;
pub mod cwd;
pub mod entrypoint;
pub mod env;
pub mod exec;
pub mod executor;
pub mod fault_signals;
pub mod inherited;
pub mod lifecycle;
pub mod metrics;
pub mod module;
pub mod oom;
pub mod rootfs;
pub mod view;

use std::path::PathBuf;

/// Where libcontainer keeps container state for one containerd (by its address) and
/// namespace, so two containerds on a node never see each other's containers.
pub fn state_root(containerd_address: &str, namespace: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(containerd_address.as_bytes());
    let instance: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/run/containerd-shim-wasm").join(instance).join(namespace)
}
