//! Shared test support: a private "node" (engine directory + shim config file), the
//! shim binary, the fixture plugins (C files compiled with `cc`, the Rust panic
//! fixture), the wasmtime plugin, and the conformance corpus compiled to wasm.
//!
//! Artifacts built by `make` (release plugins, the Rust fixture) are found in the cargo
//! target directory; a missing one fails the test with the command that builds it.

#![allow(dead_code)]

pub mod cases;
pub mod containerd;
pub mod engine;
pub mod netns_http;
pub mod node;
pub mod registry;
pub mod stress;
pub mod wasi_components;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-wasm-v1"))
}

/// A directory that only this test uses, under the target directory.
pub fn scratch(name: &str) -> tempfile::TempDir {
    let base = target_dir().join("test-scratch");
    fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(base).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A shim installation of its own: an engine directory and a config file naming it.
pub struct Node {
    dir: tempfile::TempDir,
}

/// What a shim command did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The value of [`RUN_MARKER`] in the command's environment, which every process it
    /// started inherits (engine processes included): how its leftovers are found.
    marker: Option<String>,
}

/// An environment variable set on each command a [`Node`] runs, unique per command.
const RUN_MARKER: &str = "SHIM_WASM_TEST_RUN";

impl Ran {
    pub fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            marker: None,
        }
    }

    /// The output of a command started with [`Node::marked_shim`].
    pub fn marked(output: Output, marker: String) -> Self {
        Self { marker: Some(marker), ..Self::from(output) }
    }

    /// Processes the command started that are still there, after up to 5 s for ones being
    /// killed to go: their pids and command lines.
    pub fn processes_left(&self) -> Vec<(u32, String)> {
        let Some(marker) = &self.marker else { return Vec::new() };
        let needle = format!("{RUN_MARKER}={marker}\0");
        let find = || -> Vec<(u32, String)> {
            let entries = fs::read_dir("/proc").map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
            entries
                .iter()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
                })
                .map(|pid| {
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
                })
                .collect()
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let left = find();
            if left.is_empty() || std::time::Instant::now() > until {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The one `containerd-shim-wasm: error:` line; fails unless there is exactly one.
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> =
            self.stderr.lines().filter(|l| l.starts_with("containerd-shim-wasm: error: ")).collect();
        assert_eq!(lines.len(), 1, "expected one error line, stderr was:\n{}", self.stderr);
        lines[0]
    }

    /// Asserts the exit status, that the error line contains every fragment, and, for a
    /// command a [`Node`] ran, that no process it started is left.
    pub fn assert_error(&self, code: i32, fragments: &[&str]) {
        assert_eq!(self.code, Some(code), "exit status; stderr:\n{}", self.stderr);
        let line = self.error_line();
        for fragment in fragments {
            assert!(line.contains(fragment), "error line lacks {fragment:?}:\n{line}");
        }
        let left = self.processes_left();
        assert!(left.is_empty(), "processes left after the error {line:?}: {left:?}");
    }

    pub fn assert_ok(&self) {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
    }
}

impl Node {
    pub fn new(name: &str) -> Self {
        let dir = scratch(name);
        let node = Self { dir };
        fs::create_dir(node.engines()).unwrap();
        fs::set_permissions(node.engines(), fs::Permissions::from_mode(0o755)).unwrap();
        node.write_config("");
        node
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn engines(&self) -> PathBuf {
        self.dir.path().join("engines")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Writes the config file: the engine directory plus `extra` lines.
    pub fn write_config(&self, extra: &str) {
        let text = format!("engine_dirs = [{:?}]\n{extra}", self.engines());
        fs::write(self.config(), text).unwrap();
    }

    /// The smallest module every engine would run (an empty `_start`), as `m.wasm` in the
    /// node's directory; returns its path.
    pub fn empty_module(&self) -> String {
        let module = self.root().join("m.wasm");
        fs::write(&module, wat::parse_str(r#"(module (func (export "_start")))"#).unwrap()).unwrap();
        path_str(&module).to_string()
    }

    /// Installs a plugin file as `<engine>.so` with mode 0755.
    pub fn install(&self, engine: &str, plugin: &Path) -> PathBuf {
        let dest = self.engines().join(format!("{engine}.so"));
        fs::copy(plugin, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", plugin.display()));
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
        dest
    }

    /// The shim, configured for this node, with quiet logs.
    pub fn shim(&self) -> Command {
        let mut cmd = Command::new(shim_bin());
        cmd.env("CONTAINERD_SHIM_WASM_CONFIG", self.config()).env("RUST_LOG", "error").stdin(Stdio::null());
        cmd
    }

    /// A value for [`RUN_MARKER`] no other command of any test process has.
    fn marker() -> String {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", std::process::id())
    }

    /// [`Node::shim`] with a run marker of its own, for a test that spawns the command
    /// itself; [`Ran::marked`] gives what it did and finds what it left.
    pub fn marked_shim(&self) -> (Command, String) {
        let marker = Self::marker();
        let mut cmd = self.shim();
        cmd.env(RUN_MARKER, &marker);
        (cmd, marker)
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        let (mut cmd, marker) = self.marked_shim();
        Ran::marked(cmd.args(args).output().unwrap(), marker)
    }

    /// Runs with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Ran {
        use std::io::Write;
        let (mut cmd, marker) = self.marked_shim();
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        Ran::marked(child.wait_with_output().unwrap(), marker)
    }
}

/// Builds each output once per test process; across processes (test binaries run in
/// parallel) a unique temporary file renamed into place keeps readers safe.
fn build_once(out: PathBuf, build: impl FnOnce(&Path)) -> PathBuf {
    static BUILT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(&out) {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        build(&tmp);
        fs::rename(&tmp, &out).unwrap();
        built.insert(out.clone());
    }
    out
}

/// A C fixture plugin from `tests/fixtures/plugins/<name>.c`, compiled with `cc`.
pub fn c_plugin(name: &str) -> PathBuf {
    let source = repo_root().join(format!("tests/fixtures/plugins/{name}.c"));
    let out_dir = target_dir().join("fixture-plugins");
    fs::create_dir_all(&out_dir).unwrap();
    build_once(out_dir.join(format!("{name}.so")), |tmp| {
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
            .arg(repo_root().join("abi/include"))
            .arg("-o")
            .arg(tmp)
            .arg(&source)
            .status()
            .expect("cannot run cc: install gcc (or set up cc)");
        assert!(status.success(), "cc failed on {}", source.display());
    })
}

/// A plugin built by cargo, found in the target directory.
fn built_plugin(profile: &str, lib: &str, make_target: &str) -> PathBuf {
    let path = target_dir().join(profile).join(format!("lib{lib}.so"));
    assert!(path.is_file(), "{} is missing: run `{make_target}` first (`make test` does)", path.display());
    path
}

/// The wasmtime plugin (release build).
pub fn wasmtime_plugin() -> PathBuf {
    built_plugin("release", "engine_wasmtime", "make plugin-wasmtime")
}

/// Says what a test could not run here and why, as `SKIPPED: …` on the test process's
/// stderr itself: libtest captures `println!`/`eprintln!` of a passing test, not writes
/// to the stream, so the line reaches the CI log.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// Every engine plugin the conformance corpus runs on: wasmtime always (`make test`
/// builds it); the others when built here, with a SKIPPED line when not.
pub fn engines() -> Vec<(&'static str, PathBuf)> {
    // Said once per test binary, not at every call.
    static SAID: std::sync::Once = std::sync::Once::new();
    let mut found = vec![("wasmtime", wasmtime_plugin())];
    let mut missing = Vec::new();
    for name in ["wamr", "wasmer", "wasmedge"] {
        let path = target_dir().join("release").join(format!("libengine_{name}.so"));
        if path.is_file() {
            found.push((name, path));
        } else {
            missing.push(name);
        }
    }
    SAID.call_once(|| {
        for name in missing {
            skipped(&format!("engine {name}: plugin not built here (make plugin-{name})"));
        }
    });
    found
}

/// The Rust fixture plugin whose `run` panics.
pub fn panic_plugin() -> PathBuf {
    built_plugin("debug", "fixture_panic_plugin", "make fixtures")
}

/// A corpus program as wasm: `tests/corpus/<name>.c` compiled with clang for
/// wasm32-wasi, or `tests/corpus/<name>.wat` assembled by the `wat` crate.
pub fn corpus(name: &str) -> PathBuf {
    let dir = repo_root().join("tests/corpus");
    let out = target_dir().join("corpus").join(format!("{name}.wasm"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    build_once(out, |tmp| {
        let c_source = dir.join(format!("{name}.c"));
        if c_source.exists() {
            let status = Command::new(wasm_cc())
                .args(["--target=wasm32-wasi", "-O2", "-Wl,--strip-all", "-o"])
                .arg(tmp)
                .arg(&c_source)
                .status()
                .expect("cannot run clang: install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32");
            assert!(status.success(), "clang failed on {}", c_source.display());
        } else {
            let binary = wat::parse_file(dir.join(format!("{name}.wat"))).unwrap();
            fs::write(tmp, binary).unwrap();
        }
    })
}

/// A module of about `kib` KiB that does real work when run: `functions` functions of
/// integer arithmetic, each called once from `_start`, which prints nothing and exits 0.
pub fn generated_module(dir: &Path, kib: usize) -> PathBuf {
    // Each function below is about 640 bytes of code.
    let functions = (kib * 1024 / 640).max(1);
    let mut wat = String::from("(module\n");
    for f in 0..functions {
        wat.push_str(&format!(
            "(func $f{f} (param $x i32) (result i32) (local $a i32) (local.set $a (local.get $x))\n"
        ));
        for i in 0..40 {
            wat.push_str(&format!(
                "(local.set $a (i32.xor (i32.mul (local.get $a) (i32.const {})) (i32.add (local.get $a) (i32.const {}))))\n",
                2 * (f + i) + 1,
                f * 40 + i
            ));
        }
        wat.push_str("(local.get $a))\n");
    }
    wat.push_str("(func (export \"_start\") (local $s i32)\n");
    for f in 0..functions {
        wat.push_str(&format!("(local.set $s (call $f{f} (local.get $s)))\n"));
    }
    wat.push_str(")\n(memory (export \"memory\") 1))\n");
    let path = dir.join(format!("gen-{kib}k.wasm"));
    std::fs::write(&path, wat::parse_str(&wat).unwrap()).unwrap();
    path
}

/// The WebAssembly text of a corpus program.
pub fn corpus_text(name: &str) -> PathBuf {
    repo_root().join(format!("tests/corpus/{name}.wat"))
}

fn wasm_cc() -> String {
    std::env::var("WASM_CC").unwrap_or_else(|_| "clang-14".into())
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
