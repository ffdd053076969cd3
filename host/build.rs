//! Records the git revision for `--version`. Packagers building outside git set
//! `SHIM_WASM_GIT_REV` themselves.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SHIM_WASM_GIT_REV");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let rev = std::env::var("SHIM_WASM_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=SHIM_WASM_GIT_REV={}", rev.unwrap_or_else(|| "unknown".into()));
}
