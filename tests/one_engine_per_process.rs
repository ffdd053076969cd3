//! Design invariant 6 at the loader: one process loads at most one plugin, and a file
//! that could not be mapped at all does not count. Its own test binary, so its own
//! process.

mod support;

use shim_wasm_abi::host::{LoadError, LoadedPlugin};
use support::{c_plugin, scratch};

#[test]
fn a_process_loads_one_plugin_at_most() {
    let dir = scratch("one-engine");
    let not_elf = dir.path().join("x.so");
    std::fs::write(&not_elf, "not a library").unwrap();
    // SAFETY: test fixtures built by this test suite.
    let err = unsafe { LoadedPlugin::load(&not_elf) }.unwrap_err();
    assert!(matches!(err, LoadError::Open { .. }), "{err}");

    let echo = c_plugin("echo");
    // SAFETY: as above.
    let plugin = unsafe { LoadedPlugin::load(&echo) }.expect("the first plugin loads");
    assert_eq!(plugin.descriptor().engine_name, "echo");
    assert_eq!(plugin.negotiated_abi(), shim_wasm_abi::ABI_VERSION);

    let crash = c_plugin("crash");
    // SAFETY: as above.
    let err = unsafe { LoadedPlugin::load(&crash) }.unwrap_err().to_string();
    assert!(err.contains("this process already loaded") && err.contains("echo.so"), "{err}");
    assert!(err.contains("one engine plugin per process"), "{err}");
}
