//! WASI 0.2 components the tests make: a core module of the corpus written in WAT against
//! the canonical ABI, made a component of a WIT world with the WASI WIT that the
//! wasmtime-wasi-http crate ships (wasi:http and its dependencies, wasi:cli among them),
//! found in cargo's registry at the version in Cargo.lock. Nothing of that WIT is copied
//! into this repository.

use std::fs;
use std::path::PathBuf;

use super::{build_once, repo_root, target_dir};

/// `tests/corpus/http_handler.wat` as a `wasi:http/proxy` component (`tests/http_serve.rs`).
pub fn http_handler() -> PathBuf {
    component("http_handler", "wasmtime:wasi-http/bindings")
}

/// `tests/corpus/print_cwd.wat` as a `wasi:cli/command` component: prints `cwd:<its
/// working directory>`.
pub fn print_cwd() -> PathBuf {
    component("print_cwd", "wasi:cli/command@0.2.12")
}

/// `tests/corpus/p3_command.wat` as a WASI 0.3 `wasi:cli/command` component whose `run`
/// returns `err` (exit status 1).
pub fn p3_command() -> PathBuf {
    build_component("p3_command", "wasi:cli/command@0.3.0", wit_dir_of("wasmtime-wasi", "src/p3/wit"))
}

/// The corpus module `name` made a component of `world` of the wasi:http WIT.
fn component(name: &str, world: &str) -> PathBuf {
    build_component(name, world, wit_dir_of("wasmtime-wasi-http", "wit"))
}

/// The corpus module `name` made a component of `world` of the WIT in `wit`, built once
/// per test process into `target/corpus/`.
fn build_component(name: &str, world: &str, wit: PathBuf) -> PathBuf {
    let out = target_dir().join(format!("corpus/{name}.component.wasm"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    build_once(out, |tmp| {
        let mut module = wat::parse_file(repo_root().join(format!("tests/corpus/{name}.wat"))).unwrap();
        let mut resolve = wit_parser::Resolve::default();
        let (package, _) = resolve.push_dir(wit).unwrap();
        let world = resolve.select_world(&[package], Some(world)).unwrap();
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

/// `subdir` of `krate` (a crate the wasmtime plugin is built with) in cargo's registry, at
/// the version in Cargo.lock.
fn wit_dir_of(krate: &str, subdir: &str) -> PathBuf {
    let lock = fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains(&format!("name = \"{krate}\"\n")))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{krate} is not in Cargo.lock"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registry = cargo_home.join("registry/src");
    fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("cannot read cargo's registry {}: {e}", registry.display()))
        .flatten()
        .map(|index| index.path().join(format!("{krate}-{version}/{subdir}")))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("{krate} {version} is not in {}: run `cargo fetch`", registry.display()))
}
