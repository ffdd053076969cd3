//! Reports the wasmtime version cargo resolved (from the workspace Cargo.lock) as
//! `WASMTIME_VERSION`, so the plugin's descriptor and cache key name the real engine.

fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|pkg| pkg.lines().any(|l| l.trim() == "name = \"wasmtime\""))
        .and_then(|pkg| pkg.lines().find_map(|l| l.trim().strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WASMTIME_VERSION={version}");
}
