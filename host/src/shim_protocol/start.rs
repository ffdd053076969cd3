//! `start`: find or start the long-lived server for this container's group, and print
//! its address. Under the group's lock (see [`super::group`]).
//!
//! Containers of one Kubernetes pod share a server (grouped by the
//! `io.kubernetes.cri.sandbox-id` annotation). The socket is bound here and handed to the
//! server as descriptor 3, so the address is live before it is printed. The reply is the
//! plain address: containerd 1.6 reads it as is, 1.7 takes a plain address as task API
//! v2, and 2.x accepts it too (a JSON reply would break 1.6, and 1.7 with version 3).

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use containerd_shim::Flags;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::protobuf::well_known_types::any::Any;

use super::group::GroupLock;
use crate::exit::{Failure, Outcome, SHIM_FAILURE};
use crate::task::options::{RawRuntimeOptions, SAVED_OPTIONS_FILE};

const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

pub fn start(flags: &Flags, argv0: &str) -> Outcome {
    let bundle = std::env::current_dir()?;
    save_stdin_options(&bundle);
    let address = server_address(flags, &bundle);
    let path = address.strip_prefix("unix://").unwrap_or(&address).to_string();

    // No logging on this path: containerd 1.6 reads start's stdout and stderr together
    // as the address.
    let group = GroupLock::acquire(Path::new(&path))?;
    if UnixStream::connect(&path).is_err() {
        let listener = bind(&path)?;
        spawn_server(flags, argv0, &address, &listener)?;
    }
    // The server stays for this container's Create (see `group`).
    group.add_pending(&flags.id)?;
    drop(group);
    std::fs::write(bundle.join("address"), &address)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(address.as_bytes())?;
    stdout.flush()?;
    Ok(0)
}

/// The address of the server of the container's group (`unix://` and a path).
pub fn server_address(flags: &Flags, bundle: &Path) -> String {
    let grouping = sandbox_id(bundle).unwrap_or_else(|| flags.id.clone());
    containerd_shim::socket_address(&flags.address, &flags.namespace, &grouping)
}

fn sandbox_id(bundle: &Path) -> Option<String> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    Some(spec["annotations"][SANDBOX_ID_ANNOTATION].as_str()?.to_string())
}

fn bind(path: &str) -> Result<UnixListener, Failure> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot listen on {path}: {e}")))
}

fn spawn_server(flags: &Flags, argv0: &str, address: &str, listener: &UnixListener) -> Result<(), Failure> {
    let listener_fd = listener.as_raw_fd();
    let mut command = Command::new(std::env::current_exe()?);
    // Keep the invoked name: `containerd-shim-<engine>-v1` selects the engine.
    command
        .arg0(argv0)
        .args(super::server_args(flags, address))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Its own session: the server outlives this process and containerd restarts.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            crate::exec_fd::inherit_as(listener_fd, super::serve::LISTENER_FD)
        });
    }
    command.spawn().map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot start the shim server: {e}")))?;
    Ok(())
}

/// Keeps `runtimeoptions.v1.Options` from stdin, if containerd sent any.
fn save_stdin_options(bundle: &Path) {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return;
    }
    let mut input = Vec::new();
    if stdin.lock().take(1 << 20).read_to_end(&mut input).is_err() || input.is_empty() {
        return;
    }
    let options = Any::parse_from_bytes(&input)
        .ok()
        .and_then(|any| RawRuntimeOptions::from_any(&any).ok())
        .filter(|o| !o.is_empty());
    if let Some(options) = options {
        let _ = std::fs::write(bundle.join(SAVED_OPTIONS_FILE), options.encode());
    }
}
