//! The committed C header must be exactly what cbindgen generates from `src/ffi.rs`,
//! and it must compile as C and as C++ with the layout the Rust side asserts.
//!
//! `UPDATE_HEADER=1 cargo test -p shim-wasm-abi --test header` (or `make header`)
//! rewrites the committed header.

use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed to read src/ffi.rs")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_header_matches_the_rust_types() {
    let path = crate_dir().join("include/shim_wasm_abi.h");
    let generated = generate();
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with src/ffi.rs: run `make header` and commit the result",
        path.display()
    );
}

fn compile(compiler: &str, args: &[&str], source: &Path) {
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler} (install gcc/g++): {e}"));
    assert!(
        out.status.success(),
        "{compiler} rejected the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_as_c_with_the_asserted_layout() {
    let source = crate_dir().join("tests/layout.c");
    compile("cc", &["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"], &source);
}

#[test]
fn header_compiles_as_cpp() {
    let dir = tempfile_dir();
    let source = dir.join("header.cpp");
    std::fs::write(&source, "#include \"shim_wasm_abi.h\"\nint main() { return SHIM_WASM_OK; }\n").unwrap();
    compile("c++", &["-std=c++11", "-Wall", "-Werror", "-fsyntax-only"], &source);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shim-wasm-abi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
