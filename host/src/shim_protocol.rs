//! The containerd shim v2 protocol entry point.
//!
//! containerd starts shims with Go-style flags (`-namespace k8s.io -address ... -id X
//! start`) and asks for the version with `-v`. The protocol itself (start, delete, the
//! ttrpc task service) is not part of this build yet; such invocations fail with a clear
//! error instead of being mistaken for operator commands.

use crate::exit::{Failure, Outcome, SHIM_FAILURE};

/// Flags only containerd passes.
const CONTAINERD_FLAGS: [&str; 6] = ["-namespace", "-address", "-id", "-publish-binary", "-bundle", "-v"];

pub fn is_containerd_invocation(args: &[String]) -> bool {
    args.iter().skip(1).any(|a| CONTAINERD_FLAGS.contains(&a.as_str()))
}

pub fn run(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "-v") {
        return crate::commands::version::print();
    }
    Err(Failure::new(
        SHIM_FAILURE,
        "this build of containerd-shim-wasm-v1 does not serve the containerd shim v2 protocol yet; \
         use `containerd-shim-wasm-v1 run` to run modules directly",
    ))
}
