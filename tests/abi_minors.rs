//! ABI minor versions in both directions (docs/abi.md, "Versioning"): plugins of older
//! minors (1.0, 1.1) and of a later one load and run on this shim, each reading only what
//! it knows; and
//! plugins of this minor, in C and in Rust, take the shorter run request of a 1.0 host and
//! log through its host table.

mod support;

use std::ffi::c_void;
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::path::Path;

use shim_wasm_abi::ffi::*;
use support::{Node, c_plugin, panic_plugin, wasmtime_plugin};

#[test]
fn plugins_of_an_older_and_a_later_minor_run_on_this_shim() {
    let node = Node::new("abi-minors");
    node.install("echo_1_0", &c_plugin("echo_1_0"));
    node.install("echo_1_1", &c_plugin("echo_1_1"));
    node.install("echo_later", &c_plugin("echo_later"));
    let module = node.empty_module();

    let listed = node.run(&["engines"]);
    let later_minor = SHIM_WASM_ABI_MINOR + 1;
    let minors = [
        ("echo_1_0", "1.0".to_string()),
        ("echo_1_1", "1.1".into()),
        ("echo_later", format!("1.{later_minor}")),
    ];
    for (engine, abi) in minors {
        let line = listed.stdout.lines().find(|l| l.starts_with(engine)).expect(&listed.stdout);
        assert!(line.contains(" ok ") && line.contains(&format!(" {abi} ")), "{line}");
    }

    // A plugin built for 1.0 loads and runs (its build has no `cwd` to read).
    let old = node.run(&["run", "--engine", "echo_1_0", &module]);
    assert_eq!((old.code, old.stdout.as_str()), (Some(0), "args:m.wasm\n"), "{}", old.stderr);
    // A plugin built for 1.1 (no `serve` in its table) reads 1.1's `cwd`.
    let one_one = node.run(&["run", "--engine", "echo_1_1", &module]);
    assert_eq!(
        (one_one.code, one_one.stdout.as_str()),
        (Some(0), "args:m.wasm\ncwd:\n"),
        "{}",
        one_one.stderr
    );
    // A later plugin (longer table, higher minor) gets this shim's whole request.
    let later = node.run(&["run", "--engine", "echo_later", &module]);
    assert_eq!((later.code, later.stdout.as_str()), (Some(0), "args:m.wasm\ncwd:\n"), "{}", later.stderr);
}

/// What a 1.0 host gives a plugin: its 1.0 host table and 1.0-sized run requests.
struct OneZeroHost {
    table: &'static ShimWasmPlugin,
    engine: *mut ShimWasmEngine,
}

static HOST_1_0: ShimWasmHostApi = ShimWasmHostApi {
    struct_size: 32,
    abi_version: ShimWasmAbiVersion { major: 1, minor: 0 },
    host_ctx: std::ptr::null_mut(),
    log: Some(record_log),
};

/// Every line plugins logged through [`HOST_1_0`].
static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" fn record_log(_: *mut c_void, _: ShimWasmLogLevel, message: ShimWasmStr) {
    // SAFETY: the plugin passes a view valid for the call.
    let line = String::from_utf8_lossy(unsafe { message.as_bytes() }).into_owned();
    LOGGED.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

fn logged(fragment: &str) -> bool {
    LOGGED.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|line| line.contains(fragment))
}

impl OneZeroHost {
    fn load(plugin: &Path) -> Self {
        // SAFETY: a plugin built by this repository's tests or Makefile.
        let library = unsafe { libloading::Library::new(plugin) }.unwrap();
        // SAFETY: the documented entry signature.
        let entry = unsafe { library.get::<ShimWasmPluginEntryFn>(SHIM_WASM_ENTRY_SYMBOL) }.unwrap();
        // SAFETY: a host table valid for the process.
        let table = unsafe { entry(&HOST_1_0).as_ref() }.expect("the plugin refused a 1.0 host");
        std::mem::forget(library);
        let mut engine = std::ptr::null_mut();
        let mut err = ShimWasmErrorBuf { ptr: std::ptr::null_mut(), capacity: 0, len: 0 };
        // SAFETY: as the header documents.
        let status = unsafe { (table.engine_new.unwrap())(ShimWasmStr::from_str(""), &mut engine, &mut err) };
        assert_eq!(status, SHIM_WASM_OK);
        Self { table, engine }
    }

    /// Runs `module` with a request of `struct_size` bytes whose `cwd` (past 1.0's end)
    /// holds a string no plugin may read from a 1.0 host. Returns the status, the exit
    /// code, stdout and the error message.
    fn run(&self, module: &[u8], struct_size: usize) -> (ShimWasmStatus, i32, String, String) {
        let mut stdout = tempfile::tempfile().unwrap();
        let program = ShimWasmStr::from_str("m.wasm");
        // Not UTF-8: a Rust plugin that read it would fail the run, a C one would print it.
        let poison: &[u8] = b"/poison: read past the host's request \xff";
        let request = ShimWasmRunRequest {
            struct_size,
            module: ShimWasmBytes::from_slice(module),
            entry: ShimWasmStr::from_str(""),
            args: &program,
            args_len: 1,
            env: std::ptr::null(),
            env_len: 0,
            preopens: std::ptr::null(),
            preopens_len: 0,
            stdin_fd: 0,
            stdout_fd: stdout.as_raw_fd(),
            stderr_fd: 2,
            cwd: ShimWasmStr { ptr: poison.as_ptr().cast(), len: poison.len() },
        };
        let mut message = vec![0u8; 4096];
        let mut err = ShimWasmErrorBuf { ptr: message.as_mut_ptr().cast(), capacity: message.len(), len: 0 };
        let mut code = -1;
        // SAFETY: as the header documents; every view outlives the call.
        let status = unsafe { (self.table.run.unwrap())(self.engine, &request, &mut code, &mut err) };
        message.truncate(err.len);
        let mut out = Vec::new();
        stdout.rewind().unwrap();
        stdout.read_to_end(&mut out).unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        assert!(!out.contains("poison"), "the plugin read past a 1.0 request: {out}");
        (status, code, out, String::from_utf8_lossy(&message).into_owned())
    }
}

#[test]
fn a_c_plugin_of_this_minor_takes_a_1_0_hosts_request() {
    let host = OneZeroHost::load(&c_plugin("echo"));
    let module = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    let (status, code, out, _) = host.run(&module, SHIM_WASM_RUN_REQUEST_V1_0_SIZE);
    assert_eq!((status, code, out.as_str()), (SHIM_WASM_OK, 0, "args:m.wasm\n"));
    // It logs through the 1.0 host's table (the only test that runs it there).
    assert!(logged("echo plugin says hello to the log"), "{:?}", LOGGED.lock().unwrap());
}

#[test]
fn a_rust_plugin_of_this_minor_takes_a_1_0_hosts_request() {
    let host = OneZeroHost::load(&wasmtime_plugin());
    let module = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (i32.const 42))))"#,
    )
    .unwrap();
    let (status, code, _, message) = host.run(&module, SHIM_WASM_RUN_REQUEST_V1_0_SIZE);
    assert_eq!((status, code), (SHIM_WASM_OK, 42), "{message}");
    // Shorter than any 1.x request: refused with one line, nothing run.
    let (status, _, _, message) = host.run(&module, SHIM_WASM_RUN_REQUEST_V1_0_SIZE - 8);
    assert_eq!(status, SHIM_WASM_ERR_INVALID_ARGUMENT, "{message}");
    assert_eq!(message, "run request is 96 bytes, ABI 1.0 needs at least 104");
}

/// A 1.0 host's table ends with `log`: a Rust plugin of this minor logs through it (the
/// export layer's panic message; the C plugin's line is checked above).
#[test]
fn a_rust_plugin_of_this_minor_logs_through_a_1_0_hosts_table() {
    let module = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    let panicky = OneZeroHost::load(&panic_plugin());
    let (status, _, _, message) = panicky.run(&module, SHIM_WASM_RUN_REQUEST_V1_0_SIZE);
    assert_eq!(status, SHIM_WASM_ERR_PANIC, "{message}");
    assert!(logged("engine panicky: "), "{:?}", LOGGED.lock().unwrap());
    assert!(logged("the panicky engine always panics in run"), "{:?}", LOGGED.lock().unwrap());
}
