//! A wasm container's process holds what a native program would hold after `execve`
//! under the same spec: the same capability sets (a user that is not root keeps only its
//! ambient capabilities), `no_new_privs`, seccomp (also under a profile of the spec) and AppArmor,
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

/// The native report's AppArmor line, as `caps.wasm +apparmor` prints it.
const APPARMOR_REPORT: &str = "printf 'AppArmor: %s\\n' \"$(cat /proc/self/attr/current)\"; if cat";

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
    // With a profile, the confinement is reported too, before the file.
    let apparmor = change.get("apparmorProfile").is_some();
    let args = match (workload, apparmor) {
        (Workload::WasmArgs, false) => json!(["/caps.wasm", "/secret"]),
        (Workload::WasmArgs, true) => json!(["/caps.wasm", "+apparmor", "/secret"]),
        (_, false) => json!(["/bin/sh", "-c", NATIVE_REPORT]),
        (_, true) => json!(["/bin/sh", "-c", NATIVE_REPORT.replace("if cat", APPARMOR_REPORT)]),
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

/// The spec's AppArmor profile confines the wasm program as it confines a native one.
/// libcontainer asks the kernel for the profile at the next `execve`, which a wasm program
/// never makes; the shim changes to it at once. The test's own profile allows everything
/// but reading /secret, so root is refused it, and both programs report the same label.
/// SKIPPED where the kernel has no AppArmor or `apparmor_parser` is missing; `make test`
/// then runs it in a virtual machine with AppArmor (`tests/vm/apparmor.sh`).
#[test]
fn the_specs_apparmor_profile_confines_the_wasm_process() {
    const NAME: &str = "capabilities::the_specs_apparmor_profile_confines_the_wasm_process";
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|flag| flag.starts_with('Y'));
    if !enabled {
        support::skipped(&format!(
            "{NAME}: this kernel has no AppArmor enabled (/sys/module/apparmor/parameters/enabled); \
             `make test` runs it in a virtual machine (tests/vm/apparmor.sh)"
        ));
        return;
    }
    let profile = "profile shim-wasm-test flags=(attach_disconnected,mediate_deleted) {\n  file,\n  \
        capability,\n  network,\n  signal,\n  ptrace,\n  mount,\n  umount,\n  pivot_root,\n  unix,\n  \
        deny /secret rwklx,\n}\n";
    let parser = |flag: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new("apparmor_parser")
            .arg(flag)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(profile.as_bytes()).ok()?;
        child.wait().ok().map(|status| status.success())
    };
    match parser("-r") {
        Some(true) => {}
        Some(false) => panic!("apparmor_parser -r refused the test's profile"),
        None => {
            support::skipped(&format!("{NAME}: apparmor_parser is not installed (Debian: apparmor)"));
            return;
        }
    }
    let mut change = process(0, &DEFAULTS, &[], true);
    change["apparmorProfile"] = json!("shim-wasm-test");
    let report = std::panic::catch_unwind(|| same_as_native("apparmor", change));
    parser("-R");
    let report = report.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_eq!(line(&report, "AppArmor:"), "AppArmor: shim-wasm-test (enforce)");
    assert_eq!(line(&report, "open /secret"), "open /secret: Permission denied");
}
