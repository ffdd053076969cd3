//! Errors of loading and calling a plugin. Every message names the file, the reason,
//! the versions involved where they matter, and what to do.

use std::path::PathBuf;

use crate::{AbiVersion, Status};

/// Why a plugin was refused at load time.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot load engine plugin {path}: this process already loaded {loaded}; \
         one engine plugin per process (run each engine in its own process)"
    )]
    AlreadyLoaded { path: PathBuf, loaded: PathBuf },

    #[error(
        "cannot load engine plugin {path}: {reason}; it must be a shared library built for \
         this machine ({arch}-linux): rebuild or reinstall the plugin"
    )]
    Open { path: PathBuf, reason: String, arch: &'static str },

    #[error(
        "{path} is not a containerd-shim-wasm engine plugin: it does not export the entry \
         symbol `shim_wasm_plugin_entry`; build it with `export_plugin!` or against \
         shim_wasm_abi.h, or remove it from the engine directory"
    )]
    MissingEntry { path: PathBuf },

    #[error(
        "engine plugin {path} refused this shim (engine ABI {host}): its entry function \
         returned NULL; install a plugin built for engine ABI {host}"
    )]
    Refused { path: PathBuf, host: AbiVersion },

    #[error(
        "engine plugin {path} speaks engine ABI {plugin}, but this shim speaks {host}: \
         install a build of the plugin for ABI {}.x, or a shim that speaks ABI {}.x",
        host.major, plugin.major
    )]
    MajorMismatch { path: PathBuf, plugin: AbiVersion, host: AbiVersion },

    #[error(
        "engine plugin {path} is broken: its function table is {size} bytes but engine ABI \
         {}.x needs at least {needed}; rebuild the plugin against the current header", plugin.major
    )]
    Truncated { path: PathBuf, plugin: AbiVersion, size: usize, needed: usize },

    #[error(
        "engine plugin {path} is broken: required function `{function}` is NULL \
         (engine ABI {plugin}); rebuild the plugin"
    )]
    MissingFunction { path: PathBuf, plugin: AbiVersion, function: &'static str },

    #[error("engine plugin {path} is broken: its {field} is not valid UTF-8; rebuild the plugin")]
    BadDescriptor { path: PathBuf, field: &'static str },
}

/// A plugin call that failed: the operation, the plugin's status and its message.
#[derive(Debug, thiserror::Error)]
#[error("{engine} {op} failed ({status}): {message}")]
pub struct CallError {
    pub engine: String,
    pub op: &'static str,
    pub status: Status,
    pub message: String,
}
