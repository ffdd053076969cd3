//! Rust views of the ABI's integer codes: versions, status codes, module kinds and
//! capability flags. Conversions from raw integers never fail: an unknown value from a
//! newer peer becomes an explicit `Unknown` variant.

use std::fmt;

use crate::ffi;

/// An ABI version (`major.minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl From<ffi::ShimWasmAbiVersion> for AbiVersion {
    fn from(v: ffi::ShimWasmAbiVersion) -> Self {
        Self { major: v.major, minor: v.minor }
    }
}

impl From<AbiVersion> for ffi::ShimWasmAbiVersion {
    fn from(v: AbiVersion) -> Self {
        Self { major: v.major, minor: v.minor }
    }
}

/// Why a plugin call failed (the `SHIM_WASM_ERR_*` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InvalidArgument,
    Unsupported,
    InvalidModule,
    Trap,
    ArtifactMismatch,
    Io,
    Panic,
    Internal,
    /// A code this version of the ABI does not know.
    Unknown(i32),
}

impl Status {
    /// The status for a raw code; `None` for `SHIM_WASM_OK`.
    pub fn from_raw(code: ffi::ShimWasmStatus) -> Option<Self> {
        Some(match code {
            ffi::SHIM_WASM_OK => return None,
            ffi::SHIM_WASM_ERR_INVALID_ARGUMENT => Self::InvalidArgument,
            ffi::SHIM_WASM_ERR_UNSUPPORTED => Self::Unsupported,
            ffi::SHIM_WASM_ERR_INVALID_MODULE => Self::InvalidModule,
            ffi::SHIM_WASM_ERR_TRAP => Self::Trap,
            ffi::SHIM_WASM_ERR_ARTIFACT_MISMATCH => Self::ArtifactMismatch,
            ffi::SHIM_WASM_ERR_IO => Self::Io,
            ffi::SHIM_WASM_ERR_PANIC => Self::Panic,
            ffi::SHIM_WASM_ERR_INTERNAL => Self::Internal,
            other => Self::Unknown(other),
        })
    }

    /// The raw code.
    pub fn to_raw(self) -> ffi::ShimWasmStatus {
        match self {
            Self::InvalidArgument => ffi::SHIM_WASM_ERR_INVALID_ARGUMENT,
            Self::Unsupported => ffi::SHIM_WASM_ERR_UNSUPPORTED,
            Self::InvalidModule => ffi::SHIM_WASM_ERR_INVALID_MODULE,
            Self::Trap => ffi::SHIM_WASM_ERR_TRAP,
            Self::ArtifactMismatch => ffi::SHIM_WASM_ERR_ARTIFACT_MISMATCH,
            Self::Io => ffi::SHIM_WASM_ERR_IO,
            Self::Panic => ffi::SHIM_WASM_ERR_PANIC,
            Self::Internal => ffi::SHIM_WASM_ERR_INTERNAL,
            Self::Unknown(code) => code,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArgument => f.write_str("invalid argument"),
            Self::Unsupported => f.write_str("unsupported"),
            Self::InvalidModule => f.write_str("invalid module"),
            Self::Trap => f.write_str("trap"),
            Self::ArtifactMismatch => f.write_str("artifact mismatch"),
            Self::Io => f.write_str("i/o error"),
            Self::Panic => f.write_str("plugin panicked"),
            Self::Internal => f.write_str("internal engine error"),
            Self::Unknown(code) => write!(f, "unknown status {code}"),
        }
    }
}

/// What a byte buffer holds, as far as an engine can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    Unknown,
    CoreModule,
    Component,
    Text,
    Artifact,
}

/// The start of every precompiled artifact the export layer writes (the envelope around
/// the engine's bytes, see `plugin::artifact`): never the start of a wasm binary
/// (`\0asm`), text format or ELF file.
pub const ARTIFACT_MAGIC: &[u8; 16] = b"\x7fSHIMWASM-ART\x01\0\0";

impl ModuleKind {
    pub fn from_raw(raw: ffi::ShimWasmModuleKind) -> Self {
        match raw {
            ffi::SHIM_WASM_KIND_CORE_MODULE => Self::CoreModule,
            ffi::SHIM_WASM_KIND_COMPONENT => Self::Component,
            ffi::SHIM_WASM_KIND_TEXT => Self::Text,
            ffi::SHIM_WASM_KIND_ARTIFACT => Self::Artifact,
            _ => Self::Unknown,
        }
    }

    pub fn to_raw(self) -> ffi::ShimWasmModuleKind {
        match self {
            Self::Unknown => ffi::SHIM_WASM_KIND_UNKNOWN,
            Self::CoreModule => ffi::SHIM_WASM_KIND_CORE_MODULE,
            Self::Component => ffi::SHIM_WASM_KIND_COMPONENT,
            Self::Text => ffi::SHIM_WASM_KIND_TEXT,
            Self::Artifact => ffi::SHIM_WASM_KIND_ARTIFACT,
        }
    }

    /// Tells a binary core module from a binary component by their preamble, and text
    /// format by its first token, and the shim's precompiled artifacts by their envelope.
    /// Engines use it as their default `detect`.
    pub fn sniff(bytes: &[u8]) -> Self {
        const MAGIC: &[u8] = b"\0asm";
        if bytes.starts_with(ARTIFACT_MAGIC) {
            return Self::Artifact;
        }
        if bytes.len() >= 8 && &bytes[..4] == MAGIC {
            // The preamble's version is 1 for core modules; components use a layer
            // field of 1 in the upper half (version bytes `0x0d 0x00 0x01 0x00`).
            return match (bytes[6], bytes[7]) {
                (0, 0) => Self::CoreModule,
                (1, 0) => Self::Component,
                _ => Self::Unknown,
            };
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
        let mut rest = text.trim_start();
        // Skip leading `;;` line comments and `(; ;)` block comments.
        loop {
            if let Some(after) = rest.strip_prefix(";;") {
                rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
            } else if let Some(after) = rest.strip_prefix("(;") {
                rest = after.split_once(";)").map_or("", |(_, r)| r).trim_start();
            } else {
                break;
            }
        }
        if rest.starts_with("(module") || rest.starts_with("(component") { Self::Text } else { Self::Unknown }
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown",
            Self::CoreModule => "core module",
            Self::Component => "component",
            Self::Text => "text format",
            Self::Artifact => "precompiled artifact",
        })
    }
}

/// The `SHIM_WASM_CAP_*` flags a plugin declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    pub const WASI_P1: Self = Self(ffi::SHIM_WASM_CAP_WASI_P1);
    pub const COMPONENTS: Self = Self(ffi::SHIM_WASM_CAP_COMPONENTS);
    pub const PRECOMPILE: Self = Self(ffi::SHIM_WASM_CAP_PRECOMPILE);
    pub const TEXT_FORMAT: Self = Self(ffi::SHIM_WASM_CAP_TEXT_FORMAT);
    pub const MEMORY_LIMIT: Self = Self(ffi::SHIM_WASM_CAP_MEMORY_LIMIT);
    pub const HTTP_SERVE: Self = Self(ffi::SHIM_WASM_CAP_HTTP_SERVE);

    /// Every flag this ABI version knows, with its name.
    pub const NAMED: [(Self, &'static str); 6] = [
        (Self::WASI_P1, "wasi-p1"),
        (Self::COMPONENTS, "components"),
        (Self::PRECOMPILE, "precompile"),
        (Self::TEXT_FORMAT, "text-format"),
        (Self::MEMORY_LIMIT, "memory-limit"),
        (Self::HTTP_SERVE, "http-serve"),
    ];

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the known flags that are set.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMED.iter().filter(|(flag, _)| self.contains(*flag)).map(|(_, name)| *name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_tells_modules_components_and_text_apart() {
        assert_eq!(ModuleKind::sniff(b"\0asm\x01\0\0\0"), ModuleKind::CoreModule);
        assert_eq!(ModuleKind::sniff(b"\0asm\x0d\0\x01\0"), ModuleKind::Component);
        assert_eq!(ModuleKind::sniff(b";; hi\n(module)"), ModuleKind::Text);
        assert_eq!(ModuleKind::sniff(b"(; c ;) (component)"), ModuleKind::Text);
        assert_eq!(ModuleKind::sniff(b"\x7fELF\x02\x01"), ModuleKind::Unknown);
        assert_eq!(ModuleKind::sniff(b"#!/bin/sh\n"), ModuleKind::Unknown);
        assert_eq!(ModuleKind::sniff(b""), ModuleKind::Unknown);
        assert_eq!(ModuleKind::sniff(b"\x7fSHIMWASM-ART\x01\0\0\x05\0\0\0"), ModuleKind::Artifact);
    }

    #[test]
    fn unknown_status_codes_survive_a_round_trip() {
        assert_eq!(Status::from_raw(0), None);
        assert_eq!(Status::from_raw(4), Some(Status::Trap));
        assert_eq!(Status::from_raw(99), Some(Status::Unknown(99)));
        assert_eq!(Status::Unknown(99).to_raw(), 99);
        for code in 1..=8 {
            assert_eq!(Status::from_raw(code).unwrap().to_raw(), code);
        }
    }

    #[test]
    fn capability_names() {
        let caps = Capabilities::WASI_P1.union(Capabilities::PRECOMPILE);
        assert_eq!(caps.names(), ["wasi-p1", "precompile"]);
        assert!(!caps.contains(Capabilities::COMPONENTS));
    }
}
