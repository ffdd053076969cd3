//! Design invariant 6 at the loader: one process loads at most one plugin, and a file
//! that could not be mapped at all does not count; and the file loaded is the one the
//! shim opened and checked, even if the path was replaced since. Its own test binary, so
//! its own process.

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

    // The file that was checked is the file that is loaded: echo.so is opened, then
    // replaced by another plugin before the load, and the descriptor still maps echo.
    let echo = dir.path().join("echo.so");
    std::fs::copy(c_plugin("echo"), &echo).unwrap();
    let checked = std::fs::File::open(&echo).unwrap();
    let replacement = dir.path().join("replacement.so");
    std::fs::copy(c_plugin("crash"), &replacement).unwrap();
    std::fs::rename(&replacement, &echo).unwrap();
    // SAFETY: as above.
    let plugin = unsafe { LoadedPlugin::load_fd(&echo, std::os::fd::AsFd::as_fd(&checked)) }
        .expect("the first plugin loads");
    assert_eq!(plugin.descriptor().engine_name, "echo");
    assert_eq!(plugin.negotiated_abi(), shim_wasm_abi::ABI_VERSION);

    let crash = c_plugin("crash");
    // SAFETY: as above.
    let err = unsafe { LoadedPlugin::load(&crash) }.unwrap_err().to_string();
    assert!(err.contains("this process already loaded") && err.contains("echo.so"), "{err}");
    assert!(err.contains("one engine plugin per process"), "{err}");
}
