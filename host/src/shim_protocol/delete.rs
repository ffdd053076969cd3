//! `delete`: containerd's cleanup after a shim that died. Removes what the container
//! left (processes, cgroup, state, the rootfs mount, its group's files when no server is
//! left) and answers a `DeleteResponse`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;

use containerd_shim::DeleteResponse;
use containerd_shim::Flags;
use containerd_shim::protos::protobuf::Message;

use super::group::GroupLock;
use crate::container::{lifecycle, rootfs, state_root};
use crate::exit::Outcome;

/// The container's start no longer keeps a server; with no server left, the group's
/// files go (a server killed outright could not remove them).
fn forget_start(flags: &Flags, bundle: &Path) {
    let address = super::start::server_address(flags, bundle);
    let socket = Path::new(address.strip_prefix("unix://").unwrap_or(&address));
    if let Ok(group) = GroupLock::acquire(socket) {
        group.remove_pending(&flags.id);
        if UnixStream::connect(socket).is_err() && !group.has_pending() {
            group.retire();
        }
    }
}

pub fn delete(flags: &Flags) -> Outcome {
    let bundle = if flags.bundle.is_empty() { std::env::current_dir()? } else { flags.bundle.clone().into() };
    if let Err(e) = lifecycle::delete(&state_root(&flags.address, &flags.namespace), &flags.id) {
        tracing::warn!(id = %flags.id, "cleanup: {e}");
    }
    rootfs::unmount(&bundle);
    forget_start(flags, &bundle);
    let mut response = DeleteResponse::new();
    response.exit_status = 128 + libc::SIGKILL as u32;
    response.exited_at = Some(containerd_shim::util::timestamp()?).into();
    let mut stdout = std::io::stdout().lock();
    response.write_to_writer(&mut stdout)?;
    stdout.flush()?;
    Ok(0)
}
