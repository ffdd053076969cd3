//! What a plugin's export layer does with module bytes it did not make: `detect`, then
//! `run`, through the C function table, as the shim calls them. The bytes come from an
//! image or a volume; the layer sniffs them, unwraps a precompiled artifact's envelope
//! and checks its key, checks the entry function of a core module, and on a refusal looks
//! for the proposal the module needs. Any bytes end in a status, never a panic (which the
//! layer would turn into SHIM_WASM_ERR_PANIC: asserted here) or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shim_wasm_abi::Capabilities;
use shim_wasm_abi::ffi::*;
use shim_wasm_abi::plugin::{Engine, PluginError, RunRequest};

/// An engine that accepts every kind and refuses every program as invalid, so that the
/// layer's refusal path (naming a missing proposal) runs too.
struct Refuses;

impl Engine for Refuses {
    const NAME: &'static str = "fuzz";
    const ENGINE_VERSION: &'static str = "0";
    const PLUGIN_VERSION: &'static str = "0";
    const CAPABILITIES: Capabilities = Capabilities::WASI_P1
        .union(Capabilities::COMPONENTS)
        .union(Capabilities::PRECOMPILE)
        .union(Capabilities::TEXT_FORMAT);

    fn new(_settings: &str) -> Result<Self, PluginError> {
        Ok(Refuses)
    }

    fn cache_key(&self) -> Result<String, PluginError> {
        Ok("key".into())
    }

    fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        Ok(bytes.to_vec())
    }

    fn run(&self, _request: RunRequest<'_>) -> Result<i32, PluginError> {
        Err(PluginError::invalid_module("refused by the fuzz engine"))
    }
}

static TABLE: ShimWasmPlugin = shim_wasm_abi::plugin::export::plugin_table::<Refuses>();

fuzz_target!(|bytes: &[u8]| {
    let mut message = vec![0u8; 1024];
    let mut err = ShimWasmErrorBuf { ptr: message.as_mut_ptr().cast(), capacity: message.len(), len: 0 };
    let mut engine = std::ptr::null_mut();
    // SAFETY (whole target): the table's functions called as the header documents, with
    // views that outlive each call.
    unsafe {
        assert_eq!((TABLE.engine_new.unwrap())(ShimWasmStr::from_str(""), &mut engine, &mut err), SHIM_WASM_OK);
        let mut kind = 0;
        let status = (TABLE.detect.unwrap())(engine, ShimWasmBytes::from_slice(bytes), &mut kind, &mut err);
        assert_ne!(status, SHIM_WASM_ERR_PANIC, "detect panicked");
        let program = ShimWasmStr::from_str("m.wasm");
        let request = ShimWasmRunRequest {
            struct_size: size_of::<ShimWasmRunRequest>(),
            module: ShimWasmBytes::from_slice(bytes),
            entry: ShimWasmStr::from_str(""),
            args: &program,
            args_len: 1,
            env: std::ptr::null(),
            env_len: 0,
            preopens: std::ptr::null(),
            preopens_len: 0,
            stdin_fd: 0,
            stdout_fd: 1,
            stderr_fd: 2,
            cwd: ShimWasmStr::from_str("/"),
        };
        let mut code = 0;
        let status = (TABLE.run.unwrap())(engine, &request, &mut code, &mut err);
        let text = String::from_utf8_lossy(&message[..err.len.min(message.len())]).into_owned();
        assert_ne!(status, SHIM_WASM_ERR_PANIC, "run panicked: {text}");
        assert_ne!(status, SHIM_WASM_OK, "the fuzz engine refuses every program");
        (TABLE.engine_free.unwrap())(engine);
    }
});
