//! Configuration errors: each says what is wrong, where, and how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "invalid engine name {name:?}: engine names are plain names matching [a-z0-9][a-z0-9_-]* \
         (at most 64 characters), never paths; use for example \"wasmtime\""
    )]
    InvalidEngineName { name: String },

    #[error("cannot read the shim config file {path}: {source}; fix the file or point {env} at another one")]
    Read {
        path: PathBuf,
        env: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid shim config file {path}: {message}")]
    Parse { path: PathBuf, message: String },

    #[error(
        "invalid runtime options ({origin}): {message}; the options table takes `engine = \"NAME\"` \
         and a [settings] table for the engine"
    )]
    Options { origin: String, message: String },

    #[error(
        "no engine chosen: set `engine` in the runtime options, invoke the shim as \
         containerd-shim-<engine>-v1, or set default_engine in the shim config file"
    )]
    NoEngine,
}
