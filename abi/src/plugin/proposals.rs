//! WebAssembly proposals beyond the 1.0 core: which ones an engine runs, and which one a
//! module it refused needs and the engine lacks — so the refusal names the proposal
//! ("wamr does not support the tail calls proposal") rather than the engine's own
//! words ("unsupported opcode 12"). One implementation for every plugin.

use wasmparser::{Validator, WasmFeatures};

/// A proposal an engine may or may not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposal {
    BulkMemory,
    ReferenceTypes,
    MultiValue,
    Simd,
    RelaxedSimd,
    TailCalls,
    ExtendedConst,
    MultiMemory,
    FunctionReferences,
    Gc,
    Exceptions,
    Threads,
    Memory64,
}

impl Proposal {
    /// Every proposal, in the order refusals look for them: one that builds on another
    /// comes first (relaxed SIMD before SIMD, GC before typed function references), so a
    /// module that needs both is refused for the one it is about.
    pub const ALL: [Proposal; 13] = [
        Self::BulkMemory,
        Self::ReferenceTypes,
        Self::MultiValue,
        Self::RelaxedSimd,
        Self::Simd,
        Self::TailCalls,
        Self::ExtendedConst,
        Self::MultiMemory,
        Self::Gc,
        Self::FunctionReferences,
        Self::Exceptions,
        Self::Threads,
        Self::Memory64,
    ];

    /// Its name in messages and in the README's engine table.
    pub fn name(self) -> &'static str {
        match self {
            Self::BulkMemory => "bulk memory",
            Self::ReferenceTypes => "reference types",
            Self::MultiValue => "multi-value",
            Self::Simd => "SIMD",
            Self::RelaxedSimd => "relaxed SIMD",
            Self::TailCalls => "tail calls",
            Self::ExtendedConst => "extended constant expressions",
            Self::MultiMemory => "multiple memories",
            Self::FunctionReferences => "typed function references",
            Self::Gc => "garbage collection",
            Self::Exceptions => "exception handling",
            Self::Threads => "threads (shared memory, atomics)",
            Self::Memory64 => "64-bit memory",
        }
    }

    fn features(self) -> WasmFeatures {
        match self {
            Self::BulkMemory => WasmFeatures::BULK_MEMORY,
            Self::ReferenceTypes => WasmFeatures::REFERENCE_TYPES,
            Self::MultiValue => WasmFeatures::MULTI_VALUE,
            Self::Simd => WasmFeatures::SIMD,
            Self::RelaxedSimd => WasmFeatures::RELAXED_SIMD,
            Self::TailCalls => WasmFeatures::TAIL_CALL,
            Self::ExtendedConst => WasmFeatures::EXTENDED_CONST,
            Self::MultiMemory => WasmFeatures::MULTI_MEMORY,
            Self::FunctionReferences => WasmFeatures::FUNCTION_REFERENCES,
            Self::Gc => WasmFeatures::GC,
            Self::Exceptions => WasmFeatures::EXCEPTIONS,
            Self::Threads => WasmFeatures::THREADS,
            Self::Memory64 => WasmFeatures::MEMORY64,
        }
    }
}

/// What every engine runs: WebAssembly 1.0, and the small additions of 2.0 no engine here
/// lacks (sign extension, saturating conversions), and components where they apply.
fn baseline() -> WasmFeatures {
    WasmFeatures::WASM1
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::COMPONENT_MODEL
}

fn valid_with(module: &[u8], proposals: impl Iterator<Item = Proposal>) -> bool {
    let features = proposals.fold(baseline(), |features, p| features | p.features());
    Validator::new_with_features(features).validate_all(module).is_ok()
}

/// The first proposal (in [`Proposal::ALL`] order) that `module` cannot do without and
/// that is not in `supported`; `None` when the module needs none of those — or is not
/// valid WebAssembly with every proposal, so the engine's own message says more.
pub fn missing(module: &[u8], supported: &[Proposal]) -> Option<Proposal> {
    if valid_with(module, supported.iter().copied()) || !valid_with(module, Proposal::ALL.into_iter()) {
        return None;
    }
    Proposal::ALL
        .into_iter()
        .filter(|p| !supported.contains(p))
        .find(|&lacking| !valid_with(module, Proposal::ALL.into_iter().filter(|p| *p != lacking)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn names_the_proposal_a_module_needs_and_the_engine_lacks() {
        let tail =
            module("(module (func $f (result i32) (return_call $g)) (func $g (result i32) (i32.const 1)))");
        assert_eq!(missing(&tail, &[]), Some(Proposal::TailCalls));
        assert_eq!(missing(&tail, &[Proposal::TailCalls]), None);
        // Two proposals lacking: the first in the table's order is named.
        let both = module("(module (memory i64 1) (func (return_call 0)))");
        assert_eq!(missing(&both, &[]), Some(Proposal::TailCalls));
        assert_eq!(missing(&both, &[Proposal::TailCalls]), Some(Proposal::Memory64));
        // Relaxed SIMD builds on SIMD: the refusal is about relaxed SIMD.
        let relaxed =
            module("(module (func (result v128) (i32x4.relaxed_trunc_f32x4_s (v128.const i64x2 0 0))))");
        assert_eq!(missing(&relaxed, &[]), Some(Proposal::RelaxedSimd));
        assert_eq!(missing(&relaxed, &[Proposal::RelaxedSimd]), Some(Proposal::Simd));
        // Needs nothing beyond 1.0: nothing to name.
        assert_eq!(missing(&module("(module (func))"), &[]), None);
        // Not valid with any proposal: the engine's message stands.
        assert_eq!(missing(b"\0asm\x01\0\0\0\x01", &Proposal::ALL), None);
        assert_eq!(missing(b"not wasm", &[]), None);
    }
}
