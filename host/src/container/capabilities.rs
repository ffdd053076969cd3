//! The capabilities of a wasm container's process: what the kernel would leave a native
//! program after `execve`, for the same user and spec.
//!
//! libcontainer applies the spec's capability sets, user, `no_new_privileges`, seccomp
//! and AppArmor in the init process; a native program then goes through `execve`, where
//! the kernel recomputes the sets (capabilities(7)): a process that is not root keeps only
//! its ambient capabilities, effective and permitted alike. A wasm program runs in the
//! init process with no `execve`, so this module applies the same rule, for an executable
//! with no file capabilities and no set-user-ID bit:
//!
//! ```text
//! root (real or effective uid 0, SECBIT_NOROOT unset):  P' = bounding | inheritable
//! otherwise:                                            P' = 0
//! no_new_privileges:                                    P' = P' & P   (never more than before)
//! always:                                               P' = P' | ambient
//! effective:  E' = P' if the effective uid is 0, else ambient
//! ```
//!
//! A process can never raise its permitted set, so where a native root program would gain
//! capabilities at `execve` (a spec whose permitted set is narrower than its bounding set,
//! without `no_new_privileges`) the wasm program keeps the narrower set.
//!
//! Capabilities belong to each thread: this runs before the engine is created, while the
//! init process has one thread, so every thread the engine starts inherits the result.

use caps::{CapSet, CapsHashSet};

/// Applies the `execve` rule to this (single-threaded) process.
pub fn as_after_execve() -> Result<(), String> {
    let read = |set| caps::read(None, set).map_err(|e| format!("cannot read the capabilities: {e}"));
    let (bounding, inheritable, permitted, ambient) = (
        read(CapSet::Bounding)?,
        read(CapSet::Inheritable)?,
        read(CapSet::Permitted)?,
        read(CapSet::Ambient)?,
    );
    let (mut ruid, mut euid, mut suid) = (0, 0, 0);
    // SAFETY: getresuid fills three ids.
    unsafe { libc::getresuid(&mut ruid, &mut euid, &mut suid) };
    // SAFETY: prctl read of this process's flags.
    let securebits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    let no_root = securebits > 0 && securebits & SECBIT_NOROOT != 0;
    let (effective, permitted) = after_execve(Sets {
        bounding,
        inheritable,
        permitted,
        ambient,
        root: (ruid == 0 || euid == 0) && !no_root,
        effective_root: euid == 0 && !no_root,
    });
    // Effective first: it must stay within the permitted set at every step.
    caps::set(None, CapSet::Effective, &effective)
        .map_err(|e| format!("cannot set the capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| format!("cannot set the capabilities: {e}"))
}

/// `SECBIT_NOROOT` from `<linux/securebits.h>`: uid 0 gets no capabilities at `execve`.
const SECBIT_NOROOT: i32 = 1;

/// A process's capability sets and what decides `execve`'s rule.
struct Sets {
    bounding: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
    /// Real or effective uid 0, without `SECBIT_NOROOT`.
    root: bool,
    /// Effective uid 0, without `SECBIT_NOROOT`.
    effective_root: bool,
}

/// The effective and permitted sets after `execve` (the kernel's `cap_bprm_creds_from_file`
/// for a file without capabilities), never more than the process holds now.
fn after_execve(sets: Sets) -> (CapsHashSet, CapsHashSet) {
    let mut permitted: CapsHashSet = if sets.root {
        sets.bounding.union(&sets.inheritable).copied().collect()
    } else {
        CapsHashSet::new()
    };
    // No more than before: what no_new_privileges demands, and all capset allows.
    permitted.retain(|cap| sets.permitted.contains(cap));
    permitted.extend(sets.ambient.iter().copied());
    let effective = if sets.effective_root { permitted.clone() } else { sets.ambient.clone() };
    (effective, permitted)
}

#[cfg(test)]
mod tests {
    use caps::Capability::*;

    use super::*;

    fn set(caps: &[caps::Capability]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    fn sets(root: bool, ambient: &[caps::Capability]) -> Sets {
        let defaults = set(&[CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_NET_BIND_SERVICE, CAP_KILL]);
        Sets {
            bounding: defaults.clone(),
            inheritable: set(ambient),
            permitted: defaults,
            ambient: set(ambient),
            root,
            effective_root: root,
        }
    }

    #[test]
    fn a_user_keeps_only_ambient_capabilities() {
        let (effective, permitted) = after_execve(sets(false, &[]));
        assert!(effective.is_empty() && permitted.is_empty());
        let (effective, permitted) = after_execve(sets(false, &[CAP_NET_BIND_SERVICE]));
        assert_eq!(effective, set(&[CAP_NET_BIND_SERVICE]));
        assert_eq!(permitted, set(&[CAP_NET_BIND_SERVICE]));
    }

    #[test]
    fn root_keeps_its_bounding_set() {
        let (effective, permitted) = after_execve(sets(true, &[]));
        assert_eq!(permitted, set(&[CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_NET_BIND_SERVICE, CAP_KILL]));
        assert_eq!(effective, permitted);
    }

    #[test]
    fn never_more_than_held() {
        let mut narrow = sets(true, &[]);
        narrow.permitted = set(&[CAP_KILL]);
        let (effective, permitted) = after_execve(narrow);
        assert_eq!(permitted, set(&[CAP_KILL]));
        assert_eq!(effective, set(&[CAP_KILL]));
    }
}
