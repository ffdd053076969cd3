//! Design invariant 1: the core (host, abi, shimcfg) never links a WebAssembly engine.
//! Fails if any engine crate appears in their normal or build dependency trees.

use std::process::Command;

const ENGINE_CRATES: [&str; 5] = ["wasmtime", "cranelift", "wasmer", "wasmedge", "wamr"];

#[test]
fn the_core_depends_on_no_engine_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for package in ["containerd-shim-wasm", "shim-wasm-abi", "shimcfg"] {
        let out = Command::new(&cargo)
            .current_dir(root)
            .args([
                "tree",
                "--offline",
                "--all-features",
                "-e",
                "normal,build",
                "--prefix",
                "none",
                "-p",
                package,
            ])
            .output()
            .expect("cargo tree");
        assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.lines().count() > 3, "suspiciously small tree for {package}:\n{tree}");
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(
                !ENGINE_CRATES.iter().any(|engine| name.starts_with(engine)),
                "{package} depends on engine crate {name}: the core must never link an engine"
            );
        }
    }
}
