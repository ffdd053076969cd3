//! The runtime options message containerd sends with Create (`runtimeoptions.v1.Options`,
//! decoded by hand in the shim), then the options it names: any bytes are an error or
//! options, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../host/src/task/options.rs"]
#[allow(dead_code)]
mod options;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(raw) = options::RawRuntimeOptions::decode(bytes)
        && let Some(body) = &raw.config_body
    {
        let _ = shimcfg::RuntimeOptions::parse(body, "ConfigBody");
    }
});
