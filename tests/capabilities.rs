//! A wasm container's process holds what a native program would hold after `execve`
//! under the same spec: the same capability sets (a user that is not root keeps only its
//! ambient capabilities), `no_new_privs` and seccomp (also under a profile of the spec),
//! read by each from `/proc/self/status` inside the container, and the same access to a root-only file.
//! The native program (busybox, through this same shim) is the reference, so the test
//! holds whatever the kernel's defaults; every engine plugin built here runs the wasm
//! side (capabilities belong to threads, and engines start threads of their own).

mod support;

use serde_json::{Value, json};
use support::stress::bundle::Workload;
use support::stress::shim::{Runtime, ShimServer};

/// The spec's `process` changes for one case.
fn process(user: u32, caps: &[&str], ambient: &[&str], no_new_privileges: bool) -> Value {
    json!({
        "user": { "uid": user, "gid": user },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": ambient, "ambient": ambient,
        },
        "noNewPrivileges": no_new_privileges,
    })
}

const NATIVE_REPORT: &str = "grep -E '^(Cap|NoNewPrivs:|Seccomp:)' /proc/self/status; \
    if cat /secret >/dev/null 2>&1; then echo 'open /secret: ok'; else echo 'open /secret: Permission denied'; fi";

/// Runs the native report and the wasm one on every engine built here, under the same
/// `process`, and compares them; returns the report.
fn same_as_native(name: &str, change: Value) -> String {
    let native = report(name, Runtime::Wasm { engine: "wasmtime" }, Workload::NativeArgs, &change);
    for (engine, _) in support::engines() {
        let wasm = report(name, Runtime::Wasm { engine }, Workload::WasmArgs, &change);
        assert_eq!(wasm, native, "{name}: wasm on {engine} (left) and native (right) differ");
    }
    native
}

/// What the report program printed in a container of `workload` with `change`.
fn report(name: &str, runtime: Runtime, workload: Workload, change: &Value) -> String {
    let args = match workload {
        Workload::WasmArgs => json!(["/caps.wasm", "/secret"]),
        _ => json!(["/bin/sh", "-c", NATIVE_REPORT]),
    };
    let mut shim = ShimServer::start(name, runtime, workload);
    let change = change.clone();
    // Keys of the spec's process, and `seccomp` for the spec's `linux.seccomp`.
    shim.spec_edit = Some(Box::new(move |_, spec| {
        for (key, value) in change.as_object().unwrap() {
            match key.as_str() {
                "seccomp" => spec["linux"]["seccomp"] = value.clone(),
                _ => spec["process"][key] = value.clone(),
            }
        }
        spec["process"]["args"] = args.clone();
    }));
    let output =
        shim.run_for_output(1, workload).unwrap_or_else(|e| panic!("{name}, {runtime:?}, {workload:?}: {e}"));
    shim.shutdown().unwrap();
    output
}

const DEFAULTS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn line<'a>(report: &'a str, key: &str) -> &'a str {
    report.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {report}"))
}

#[test]
fn a_user_that_is_not_root_keeps_no_capability() {
    let report = same_as_native("caps-user", process(12345, &DEFAULTS, &[], true));
    assert_eq!(line(&report, "CapEff:"), "CapEff:\t0000000000000000");
    assert_eq!(line(&report, "CapPrm:"), "CapPrm:\t0000000000000000");
    assert_eq!(line(&report, "open /secret"), "open /secret: Permission denied");
}

#[test]
fn root_keeps_the_spec_capabilities() {
    let report = same_as_native("caps-root", process(0, &DEFAULTS, &[], true));
    assert_ne!(line(&report, "CapEff:"), "CapEff:\t0000000000000000");
    assert_eq!(line(&report, "open /secret"), "open /secret: ok");
}

#[test]
fn ambient_capabilities_stay_with_a_user() {
    let report = same_as_native("caps-ambient", process(12345, &DEFAULTS, &["CAP_DAC_OVERRIDE"], true));
    // CAP_DAC_OVERRIDE is bit 1.
    assert_eq!(line(&report, "CapEff:"), "CapEff:\t0000000000000002");
    assert_eq!(line(&report, "CapAmb:"), "CapAmb:\t0000000000000002");
    assert_eq!(line(&report, "open /secret"), "open /secret: ok");
}

#[test]
fn root_with_few_capabilities_and_new_privileges_allowed() {
    let report = same_as_native("caps-few", process(0, &["CAP_KILL"], &[], false));
    assert_eq!(line(&report, "NoNewPrivs:"), "NoNewPrivs:\t0");
    // CAP_KILL is bit 5.
    assert_eq!(line(&report, "CapEff:"), "CapEff:\t0000000000000020");
}

/// The spec's seccomp profile filters the wasm program as it filters a native one (loaded
/// before the engine exists, so the threads it starts inherit it): `Seccomp: 2` for both,
/// for a user that is not root and for root. (With an explicit `noNewPrivileges: false`,
/// which containerd never writes (it omits false), libcontainer 0.7 loads the profile
/// after dropping CAP_SYS_ADMIN, and the kernel refuses it, for a native program as well:
/// "failed to load seccomp context".)
#[test]
fn the_specs_seccomp_profile_filters_the_wasm_process() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO" }],
    });
    for (name, user) in [("seccomp-user", 12345), ("seccomp-root", 0)] {
        let mut change = process(user, &DEFAULTS, &[], true);
        change["seccomp"] = profile.clone();
        let report = same_as_native(name, change);
        assert_eq!(line(&report, "Seccomp:"), "Seccomp:\t2", "{name}");
    }
}
