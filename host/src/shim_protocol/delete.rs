//! `delete`: containerd's cleanup after a shim that died. Removes what the container
//! left (processes, cgroup, state, the rootfs mount) and answers a `DeleteResponse`.

use std::io::Write;

use containerd_shim::DeleteResponse;
use containerd_shim::Flags;
use containerd_shim::protos::protobuf::Message;

use crate::container::{lifecycle, rootfs, state_root};
use crate::exit::Outcome;

pub fn delete(flags: &Flags) -> Outcome {
    let bundle = if flags.bundle.is_empty() { std::env::current_dir()? } else { flags.bundle.clone().into() };
    if let Err(e) = lifecycle::delete(&state_root(&flags.address, &flags.namespace), &flags.id) {
        tracing::warn!(id = %flags.id, "cleanup: {e}");
    }
    rootfs::unmount(&bundle);
    let mut response = DeleteResponse::new();
    response.exit_status = 128 + libc::SIGKILL as u32;
    response.exited_at = Some(containerd_shim::util::timestamp()?).into();
    let mut stdout = std::io::stdout().lock();
    response.write_to_writer(&mut stdout)?;
    stdout.flush()?;
    Ok(0)
}
