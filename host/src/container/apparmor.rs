//! The AppArmor profile of a wasm container's process (`process.apparmorProfile`).
//!
//! libcontainer asks the kernel to change to the spec's profile at the next `execve`
//! (it writes `exec <profile>` to the process's `attr/exec`), as runc does: a native
//! program is confined from its first instruction. A wasm program runs in the init
//! process with no `execve`, so that request would never take effect and the program
//! would run unconfined. This module changes the profile at once instead
//! (`changeprofile <profile>` to `attr/current`, what libapparmor's `aa_change_profile`
//! writes), while the init process has one thread (a thread's profile is its own): the
//! engine's threads inherit it. The host files the init process maps (a wasm layer from
//! containerd's content store, a cached artifact) are mapped before, as a native program's
//! executable is opened before the profile applies.
//!
//! An unconfined process may change to any profile, `no_new_privileges` or not. A spec
//! with a profile (even an empty one) on a host without AppArmor is refused at create,
//! native or wasm, with one line ([`check_host`]; libcontainer would refuse it with a bare
//! I/O error).

use std::io::Write;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};

/// Where the kernel says whether AppArmor is on (what `libcontainer::apparmor::is_enabled`
/// reads), named in the error.
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// A profile asked for on a host without AppArmor: one line. An empty one too, which
/// libcontainer refuses there as well (runc takes it as none).
pub fn check_host(profile: Option<&str>) -> Result<(), String> {
    let Some(profile) = profile else { return Ok(()) };
    if libcontainer::apparmor::is_enabled().unwrap_or(false) {
        return Ok(());
    }
    Err(format!(
        "the container asks for the AppArmor profile {profile:?} (process.apparmorProfile), but AppArmor \
         is not enabled on this host ({ENABLED}): enable it, or leave the profile out of the spec"
    ))
}

/// Confines this (single-threaded) process to `profile` now; nothing for `None` or "".
pub fn confine_now(profile: Option<&str>) -> Result<(), String> {
    let Some(profile) = profile.filter(|p| !p.is_empty()) else { return Ok(()) };
    let cannot = |e: &dyn std::fmt::Display| format!("cannot apply the AppArmor profile {profile:?}: {e}");
    let procfs = ProcfsHandle::new().map_err(|e| cannot(&e))?;
    // The LSM's own directory since Linux 5.8; `attr/current` before.
    let mut attr = procfs
        .open(ProcfsBase::ProcThreadSelf, "attr/apparmor/current", OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
        .or_else(|_| {
            procfs.open(
                ProcfsBase::ProcThreadSelf,
                "attr/current",
                OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC,
            )
        })
        .map_err(|e| cannot(&e))?;
    attr.write_all(format!("changeprofile {profile}").as_bytes()).map_err(|e| cannot(&e))
}
