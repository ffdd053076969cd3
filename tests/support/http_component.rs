//! The wasi:http test component: `tests/corpus/http_handler.wat` (a core module written
//! against the canonical ABI) made a `wasi:http/proxy` component with the wasi:http WIT
//! that the wasmtime-wasi-http crate ships, found in cargo's registry at the version in
//! Cargo.lock. Nothing of that WIT is copied into this repository.

use std::fs;
use std::path::PathBuf;

use super::{build_once, repo_root, target_dir};

/// The component, built once per test process into `target/corpus/`.
pub fn http_handler() -> PathBuf {
    let out = target_dir().join("corpus/http_handler.component.wasm");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    build_once(out, |tmp| {
        let mut module = wat::parse_file(repo_root().join("tests/corpus/http_handler.wat")).unwrap();
        let mut resolve = wit_parser::Resolve::default();
        let (package, _) = resolve.push_dir(wit_dir()).unwrap();
        let world = resolve.select_world(&[package], Some("bindings")).unwrap();
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        let component = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .unwrap()
            .encode()
            .unwrap();
        fs::write(tmp, component).unwrap();
    })
}

/// `wit/` of the wasmtime-wasi-http crate the wasmtime plugin is built with.
fn wit_dir() -> PathBuf {
    let lock = fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"wasmtime-wasi-http\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .expect("wasmtime-wasi-http is not in Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registry = cargo_home.join("registry/src");
    fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("cannot read cargo's registry {}: {e}", registry.display()))
        .flatten()
        .map(|index| index.path().join(format!("wasmtime-wasi-http-{version}/wit")))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!("wasmtime-wasi-http {version} is not in {}: run `cargo fetch`", registry.display())
        })
}
