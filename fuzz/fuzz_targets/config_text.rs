//! The two TOML texts an operator writes: the runtime options (`ConfigBody` from CRI, a
//! `ConfigPath` file) and the shim's config file. Any text is an error or a value, never
//! a panic, and an error is one line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = shimcfg::RuntimeOptions::parse(text, "ConfigBody") {
        assert!(!e.to_string().contains('\n'), "a runtime options error of more than one line: {e}");
    }
    if let Err(e) = shimcfg::ShimConfig::parse(text, Path::new("/etc/containerd-shim-wasm/config.toml")) {
        assert!(!e.to_string().contains('\n'), "a config file error of more than one line: {e}");
    }
});
