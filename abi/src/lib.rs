//! The engine ABI of containerd-shim-wasm.
//!
//! The shim (`host/`) never links a WebAssembly runtime; it loads engine plugins (`.so`
//! files) that speak the C ABI described here. Path of a request:
//! containerd → shim config → **this ABI** → plugin → engine.
//!
//! - [`ffi`]: the `#[repr(C)]` types; the committed C header
//!   `include/shim_wasm_abi.h` is generated from them.
//! - [`plugin`]: for plugin authors: implement [`plugin::Engine`] and call
//!   [`export_plugin!`]; every exported function catches panics.
//! - `host` (feature `host`): for the shim: load a plugin, check its versions and
//!   table, and call it through safe wrappers.
//! - [`component`]: which world a component implements (command or HTTP handler).
//! - [`types`]: Rust views of the ABI's integer enums and flags, shared by both sides.
//!
//! Why not `abi_stable`: it checks layouts at load time, but only between Rust crates
//! built with it; a plugin written in C could not implement its interface. The contract
//! here is a plain C header instead, with sizes and offsets asserted in Rust and in C
//! (see `docs/abi.md`).

pub mod build;
pub mod component;
pub mod ffi;
pub mod plugin;
pub mod types;

#[cfg(feature = "host")]
pub mod host;

pub use types::{AbiVersion, Capabilities, ModuleKind, Status};

/// The ABI version this crate implements.
pub const ABI_VERSION: AbiVersion =
    AbiVersion { major: ffi::SHIM_WASM_ABI_MAJOR, minor: ffi::SHIM_WASM_ABI_MINOR };
