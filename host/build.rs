//! Records the git revision for `--version`. Packagers building outside git set
//! `SHIM_WASM_GIT_REV` themselves.
//!
//! Links the shim with packed relative relocations (DT_RELR): the position-independent
//! binary has 1 MiB of ordinary ones, which every process that runs the binary (the
//! server, each launcher; containers are forked from a launcher) reads at start: 1.3 MiB
//! of the server's memory. Needs glibc 2.36 (Debian 12, Ubuntu 22.10) where it runs;
//! binutils before 2.38 ignore the flag. `SHIM_WASM_NO_RELR=1` builds without.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SHIM_WASM_NO_RELR");
    if std::env::var_os("SHIM_WASM_NO_RELR").is_none_or(|v| v.is_empty()) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=SHIM_WASM_GIT_REV");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let rev = std::env::var("SHIM_WASM_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=SHIM_WASM_GIT_REV={}", rev.unwrap_or_else(|| "unknown".into()));
}
