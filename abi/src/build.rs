//! For plugin build scripts: the version cargo resolved for the engine crate, read from
//! the workspace's `Cargo.lock`, so a plugin's descriptor and cache key name the engine
//! it really links. Use from `build.rs`:
//!
//! ```no_run
//! shim_wasm_abi::build::export_locked_version("wasmtime", "WASMTIME_VERSION");
//! ```
//!
//! and read it with `env!("WASMTIME_VERSION")`.

use std::path::{Path, PathBuf};

/// Sets the compile-time variable `var` to the locked version of `package`
/// (`unknown` when no `Cargo.lock` lists it).
pub fn export_locked_version(package: &str, var: &str) {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let version = find_lock(Path::new(&manifest_dir))
        .and_then(|lock| {
            println!("cargo:rerun-if-changed={}", lock.display());
            std::fs::read_to_string(lock).ok()
        })
        .and_then(|text| locked_version(&text, package))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env={var}={version}");
}

fn find_lock(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|dir| dir.join("Cargo.lock")).find(|lock| lock.is_file())
}

/// The version of the first `[[package]]` named `package` in a lock file's text.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let name_line = format!("name = \"{package}\"");
    lock.split("[[package]]")
        .find(|pkg| pkg.lines().any(|l| l.trim() == name_line))
        .and_then(|pkg| pkg.lines().find_map(|l| l.trim().strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_named_package() {
        let lock = "[[package]]\nname = \"wasmtime-wasi\"\nversion = \"1.0.0\"\n\n\
                    [[package]]\nname = \"wasmtime\"\nversion = \"48.0.8\"\n";
        assert_eq!(super::locked_version(lock, "wasmtime").as_deref(), Some("48.0.8"));
        assert_eq!(super::locked_version(lock, "wasmer"), None);
    }
}
