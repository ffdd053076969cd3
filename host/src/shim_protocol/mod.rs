//! The containerd shim v2 protocol: how containerd starts, serves through, and cleans up
//! after this binary.
//!
//! containerd runs the shim with Go-style flags (`-namespace ns -address ... -id ID
//! start`). Actions:
//! - [`start`]: start (or reuse) the long-lived server for this container's group and
//!   print its address; [`group`] keeps a reused server alive until the Create;
//! - [`delete`]: clean up after a shim that died, answer a `DeleteResponse`;
//! - no action (with `-socket`): [`serve`] the task service over ttrpc.
//!
//! `-v` prints the version, `-info` is not supported (containerd 2.x only asks shims that
//! declare it).

mod delete;
mod group;
mod serve;
mod start;

use containerd_shim::Flags;

use crate::exit::{Failure, Outcome, SHIM_FAILURE};

/// Flags only containerd passes; it puts them before the action (`start`, `delete`),
/// and `-namespace` first.
const CONTAINERD_FLAGS: [&str; 8] =
    ["-namespace", "-address", "-id", "-publish-binary", "-bundle", "-socket", "-debug", "-v"];

/// Whether containerd started this binary: its first argument is one of containerd's
/// flags. Only the first: the operator commands take any argument after them (`run
/// prog.wasm -v` passes `-v` to the program).
pub fn is_containerd_invocation(args: &[String]) -> bool {
    args.get(1).is_some_and(|first| CONTAINERD_FLAGS.contains(&first.as_str()))
}

pub fn run(args: &[String]) -> Outcome {
    let flags = containerd_shim::parse(&args[1..])
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("invalid shim arguments: {e}")))?;
    if flags.version {
        return crate::commands::version::print();
    }
    if flags.namespace.is_empty() {
        return Err(Failure::new(SHIM_FAILURE, "-namespace is required"));
    }
    let argv0 = args[0].clone();
    match flags.action.as_str() {
        "start" => start::start(&flags, &argv0),
        "delete" => delete::delete(&flags),
        "" if !flags.socket.is_empty() => serve::serve(&flags, argv0),
        "" => Err(Failure::new(SHIM_FAILURE, "-socket is required to serve")),
        other => Err(Failure::new(SHIM_FAILURE, format!("unknown shim action {other:?}"))),
    }
}

/// The flags the long-lived server is started with.
fn server_args(flags: &Flags, socket: &str) -> Vec<String> {
    let mut args = vec![
        "-namespace".into(),
        flags.namespace.clone(),
        "-id".into(),
        flags.id.clone(),
        "-address".into(),
        flags.address.clone(),
        "-socket".into(),
        socket.into(),
    ];
    if !flags.publish_binary.is_empty() {
        args.extend(["-publish-binary".into(), flags.publish_binary.clone()]);
    }
    if flags.debug {
        args.push("-debug".into());
    }
    args
}
