//! What an image says about itself, read by the shim for wasm layers: any bytes as an
//! image index (the platform chosen) and as a manifest (its wasm layers, the entry layer
//! for an argv[0]). The image comes from a registry: an error or a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../host/src/images/manifest.rs"]
#[allow(dead_code)]
mod manifest;

fuzz_target!(|bytes: &[u8]| {
    let _ = manifest::choose_manifest(bytes);
    if let Ok(layers) = manifest::wasm_layers(bytes) {
        let _ = manifest::entry_layer(&layers, "/app.wasm");
        let _ = manifest::entry_layer(&layers, "");
    }
});
