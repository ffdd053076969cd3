//! End to end through a real containerd (a private instance per test) driven by `ctr`:
//! wasm and native containers, stdio, args, env, exit codes, files in the image, signals,
//! `ctr task ps` / `metrics`, engine selection, bad input, and nothing left behind.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::cases::CASES;
use support::containerd::{Containerd, ImageSpec, build_image, busybox, processes_matching};
use support::{corpus, path_str};

const DEFAULT_WASMTIME: &str = "default_engine = \"wasmtime\"\n";

/// Builds and imports an image whose entrypoint is `/<program>.wasm` (plus `extra` args).
fn wasm_image(ctd: &Containerd, program: &str, extra: &[&str]) -> String {
    let name = format!("docker.io/library/{program}:test");
    let image_path = format!("/{program}.wasm");
    let mut entrypoint = vec![image_path.as_str()];
    entrypoint.extend_from_slice(extra);
    let spec =
        ImageSpec { name: &name, files: vec![(corpus(program), &image_path)], symlinks: vec![], entrypoint };
    ctd.import(&build_image(&spec, ctd.node.root()));
    name
}

#[test]
fn hello_on_stdout_and_stderr() {
    let ctd = Containerd::start("e2e-hello", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "hello", &[]);
    let ran = ctd.run(&[], &image, "hello", &[]);
    ran.assert_ok();
    assert_eq!(ran.stdout, "hello from wasm\n");
    assert!(ran.stderr.contains("hello on stderr"), "{}", ran.stderr);
}

#[test]
fn args_env_and_exit_codes() {
    let ctd = Containerd::start("e2e-args", DEFAULT_WASMTIME);
    let args = wasm_image(&ctd, "args", &[]);
    // ctr replaces the whole command line (entrypoint included) with the given args.
    let ran = ctd.run(&[], &args, "args", &["/args.wasm", "one", "two words"]);
    ran.assert_ok();
    assert_eq!(ran.stdout, "argv[0]=/args.wasm\nargv[1]=one\nargv[2]=two words\n");

    let env = wasm_image(&ctd, "env", &[]);
    let ran = ctd.run(&["--env", "GREETING=hi there"], &env, "env", &[]);
    ran.assert_ok();
    assert!(ran.stdout.lines().any(|l| l == "GREETING=hi there"), "{}", ran.stdout);
    assert!(ran.stdout.lines().any(|l| l.starts_with("PATH=")), "the image's env: {}", ran.stdout);

    let exit = wasm_image(&ctd, "exit", &[]);
    for code in [0, 1, 42] {
        let ran = ctd.run(&[], &exit, &format!("exit{code}"), &["/exit.wasm", &code.to_string()]);
        assert_eq!(ran.code, Some(code), "{}", ran.stderr);
    }
}

#[test]
fn stdin_reaches_the_container() {
    let ctd = Containerd::start("e2e-stdin", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "stdin", &[]);
    let mut child = ctd
        .ctr_command(&["run", "--rm", "--runtime", "io.containerd.wasm.v1", &image, "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"through the fifo\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through the fifo\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn files_in_the_image_and_an_entry_function() {
    let ctd = Containerd::start("e2e-files", DEFAULT_WASMTIME);
    let existing = ctd.node.root().join("existing.txt");
    std::fs::write(&existing, "from the image\n").unwrap();
    let spec = ImageSpec {
        name: "docker.io/library/files:test",
        files: vec![
            (corpus("files"), "/files.wasm"),
            (existing, "/data/existing.txt"),
            (corpus("entry"), "/entry.wasm"),
        ],
        symlinks: vec![],
        entrypoint: vec!["/files.wasm", "/data"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let ran = ctd.run(&[], spec.name, "files", &[]);
    ran.assert_ok();
    let mut lines: Vec<&str> = ran.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["entry: existing.txt", "entry: note.txt", "read back: written by wasm"]);

    // `module.wasm#function` calls another export (here returning 42).
    let ran = ctd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.wasm.v1",
        spec.name,
        "entry",
        "/entry.wasm#answer",
    ]);
    assert_eq!(ran.code, Some(42), "{}", ran.stderr);
}

/// Starts a detached long-running container and waits until it runs.
fn start_loop(ctd: &Containerd, image: &str, id: &str) {
    start_loop_with(ctd, &[], image, id);
}

fn start_loop_with(ctd: &Containerd, extra: &[&str], image: &str, id: &str) {
    let mut args = vec!["run", "-d", "--runtime", "io.containerd.wasm.v1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, id]);
    let ran = ctd.ctr(&args);
    ran.assert_ok();
    ctd.wait_for_status(id, "RUNNING");
}

#[test]
fn a_long_running_module_stops_on_termination_signals_and_sigkill() {
    let ctd = Containerd::start("e2e-signals", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "loop", &[]);
    // The termination signals a wasm PID 1 ends on (README), and SIGKILL.
    let signals =
        [("SIGTERM", "143"), ("SIGINT", "130"), ("SIGHUP", "129"), ("SIGQUIT", "131"), ("SIGKILL", "137")];
    for (signal, status) in signals {
        let id = format!("loop-{}", signal.to_lowercase());
        start_loop(&ctd, &image, &id);
        ctd.ctr(&["task", "kill", "-s", signal, &id]).assert_ok();
        ctd.wait_for_status(&id, "STOPPED");
        let rm = ctd.remove(&id);
        assert!(rm.contains(&format!("exit code {status}")), "{signal}: {rm}");
        ctd.assert_nothing_left(&id);
    }
}

#[test]
fn ps_metrics_and_resource_limits_of_a_running_container() {
    let ctd = Containerd::start("e2e-metrics", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "loop", &[]);
    start_loop_with(&ctd, &["--memory-limit", "67108864"], &image, "busy");
    let ps = ctd.ctr(&["task", "ps", "busy"]);
    ps.assert_ok();
    let pids: Vec<&str> = ps.stdout.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(!pids.is_empty(), "{}", ps.stdout);
    let metrics = ctd.ctr(&["task", "metrics", "busy"]);
    metrics.assert_ok();
    for metric in ["memory.usage_in_bytes", "cpuacct.usage", "pids.current"] {
        assert!(metrics.stdout.contains(metric), "{metric} missing:\n{}", metrics.stdout);
    }
    // The spec's resource limits are applied to the container's cgroup.
    let limit = metrics.stdout.lines().find(|l| l.starts_with("memory.limit_in_bytes")).unwrap_or_default();
    assert!(limit.split_whitespace().nth(1) == Some("67108864"), "memory limit not applied: {limit:?}");
    ctd.ctr(&["task", "kill", "-s", "SIGKILL", "busy"]).assert_ok();
    ctd.wait_for_status("busy", "STOPPED");
    ctd.remove("busy");
    ctd.assert_nothing_left("busy");
}

#[test]
fn a_native_container_runs_through_the_same_shim() {
    let ctd = Containerd::start("e2e-native", DEFAULT_WASMTIME);
    let spec = ImageSpec {
        name: "docker.io/library/busybox:test",
        files: vec![(busybox(), "/bin/busybox")],
        symlinks: vec![("busybox", "/bin/sh")],
        entrypoint: vec!["/bin/sh", "-c", "echo native $(cat /proc/self/comm); exit 3"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let ran = ctd.run(&[], spec.name, "native", &[]);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert_eq!(ran.stdout, "native cat\n");
    ctd.assert_nothing_left("native");
}

#[test]
fn engine_chosen_by_runtime_config_path_and_by_invoked_name() {
    // No default engine: the engine must come from the options or the runtime's name.
    let ctd = Containerd::start("e2e-select", "");
    let image = wasm_image(&ctd, "hello", &[]);
    let options = ctd.node.root().join("wasmtime-options.toml");
    std::fs::write(&options, "engine = \"wasmtime\"\n[settings]\nopt_level = \"none\"\n").unwrap();
    let ran = ctd.run(&["--runtime-config-path", path_str(&options)], &image, "by-options", &[]);
    ran.assert_ok();
    assert_eq!(ran.stdout, "hello from wasm\n");

    let ran = ctd.ctr(&["run", "--rm", "--runtime", "io.containerd.wasmtime.v1", &image, "by-name"]);
    ran.assert_ok();
    assert_eq!(ran.stdout, "hello from wasm\n");

    let ran = ctd.run(&[], &image, "no-engine", &[]);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("no engine chosen"), "{}", ran.stderr);
    ctd.assert_nothing_left("no-engine");
}

#[test]
fn bad_input_fails_create_with_one_line_and_leaves_nothing() {
    let ctd = Containerd::start("e2e-bad", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "hello", &[]);
    let dirs = ctd.node.engines().display().to_string();
    let cases: [(&str, &str, Vec<&str>); 4] = [
        (
            "unknown-engine",
            "engine = \"nope\"\n",
            vec!["engine \"nope\" is not installed", &dirs, "plugins present:", "wasmtime"],
        ),
        ("bad-toml", "engine = \n", vec!["invalid runtime options (ConfigPath"]),
        ("unknown-key", "engine = \"wasmtime\"\nengin = 1\n", vec!["unknown field `engin`"]),
        ("bad-settings", "[settings]\nopt_level = \"fastest\"\n", vec!["invalid wasmtime settings"]),
    ];
    for (id, options, fragments) in cases {
        let path = ctd.node.root().join(format!("{id}.toml"));
        std::fs::write(&path, options).unwrap();
        let ran = ctd.run(&["--runtime-config-path", path_str(&path)], &image, id, &[]);
        assert_ne!(ran.code, Some(0), "{id}");
        let line = ran
            .stderr
            .lines()
            .find(|l| l.contains("failed to create shim task"))
            .unwrap_or_else(|| panic!("{id}: {}", ran.stderr));
        for fragment in fragments {
            assert!(line.contains(fragment), "{id}: {line:?} lacks {fragment:?}");
        }
        ctd.ctr(&["containers", "rm", id]);
        ctd.assert_nothing_left(id);
    }

    let data = ctd.node.root().join("data.txt");
    std::fs::write(&data, "not a program").unwrap();
    let spec = ImageSpec {
        name: "docker.io/library/not-wasm:test",
        files: vec![(data, "/data.txt")],
        symlinks: vec![],
        entrypoint: vec!["/data.txt"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let ran = ctd.run(&[], spec.name, "not-wasm", &[]);
    assert!(ran.stderr.contains("entrypoint /data.txt is neither a WebAssembly module"), "{}", ran.stderr);
    ctd.ctr(&["containers", "rm", "not-wasm"]);
    ctd.assert_nothing_left("not-wasm");
    assert_eq!(ctd.ctr(&["task", "ls", "-q"]).stdout, "");
}

#[test]
fn kill_all_and_pod_grouping_share_one_shim() {
    let ctd = Containerd::start("e2e-pod", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "loop", &[]);
    let annotation = "io.kubernetes.cri.sandbox-id=pod-one";
    for id in ["pod-a", "pod-b"] {
        ctd.ctr(&["run", "-d", "--annotation", annotation, "--runtime", "io.containerd.wasm.v1", &image, id])
            .assert_ok();
        ctd.wait_for_status(id, "RUNNING");
    }
    let servers = shim_servers(&ctd);
    assert_eq!(servers.len(), 1, "containers of one pod share one shim: {servers:?}");
    for id in ["pod-a", "pod-b"] {
        ctd.ctr(&["task", "kill", "--all", "-s", "SIGKILL", id]).assert_ok();
        ctd.wait_for_status(id, "STOPPED");
        ctd.remove(id);
        ctd.assert_nothing_left(id);
    }
    wait_until(|| shim_servers(&ctd).is_empty(), "the shim exits after its last container");
}

#[test]
fn a_killed_shim_is_cleaned_up_by_the_delete_action() {
    let ctd = Containerd::start("e2e-crash", DEFAULT_WASMTIME);
    let image = wasm_image(&ctd, "loop", &[]);
    start_loop(&ctd, &image, "orphan");
    let servers = shim_servers(&ctd);
    assert_eq!(servers.len(), 1);
    let cmdline = String::from_utf8(std::fs::read(format!("/proc/{}/cmdline", servers[0])).unwrap()).unwrap();
    let socket = cmdline.split('\0').skip_while(|a| *a != "-socket").nth(1).unwrap().to_string();
    let group = Path::new("/run/containerd-shim-wasm/groups")
        .join(Path::new(socket.trim_start_matches("unix://")).file_name().unwrap());
    assert!(group.with_extension("lock").exists(), "the pod's group lock {}", group.display());
    // SAFETY: plain kill(2) on the shim server this test started through containerd.
    unsafe { libc::kill(servers[0], libc::SIGKILL) };
    // containerd notices, runs `containerd-shim-wasm-v1 ... delete`, and drops the task.
    wait_until(|| !ctd.ctr(&["task", "ls", "-q"]).stdout.contains("orphan"), "containerd cleans up the task");
    ctd.ctr(&["containers", "rm", "orphan"]).assert_ok();
    wait_until(|| processes_matching("\"id\":\"orphan\"").is_empty(), "the container's process is killed");
    // containerd drops the task before its cleanup (the delete action) has finished.
    wait_until(
        || !std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains("/orphan/rootfs "),
        "the rootfs is unmounted",
    );
    // The delete action ends by removing the dead server's group files.
    wait_until(|| processes_matching(" -id orphan ").is_empty(), "the delete action ends");
    for file in [group.with_extension("lock"), group.with_extension("pending")] {
        assert!(!file.exists(), "{} is left", file.display());
    }
    ctd.assert_nothing_left("orphan");
}

/// The long-lived shim servers of this test's containerd.
fn shim_servers(ctd: &Containerd) -> Vec<i32> {
    let address = format!("-address {}", ctd.socket().display());
    processes_matching(&address)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("-socket")
        })
        .collect()
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_oom_kill_is_published_as_a_task_oom_event() {
    let ctd = Containerd::start("e2e-oom", DEFAULT_WASMTIME);
    let spec = ImageSpec {
        name: "docker.io/library/busybox-hog:test",
        files: vec![(busybox(), "/bin/busybox")],
        symlinks: vec![("busybox", "/bin/sh"), ("busybox", "/bin/head"), ("busybox", "/bin/tr")],
        // Holds 256 MiB in a shell variable: far past the 32 MiB limit.
        entrypoint: vec!["/bin/sh", "-c", "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let mut events =
        ctd.ctr_command(&["events"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    // Two containers of one pod at once: one server watches both cgroups (one thread).
    let pod = ["--memory-limit", "33554432", "--annotation", "io.kubernetes.cri.sandbox-id=hogs"];
    std::thread::scope(|scope| {
        let runs: Vec<_> =
            ["hog-1", "hog-2"].map(|id| (id, scope.spawn(|| ctd.run(&pod, spec.name, id, &[])))).into();
        for (id, run) in runs {
            let ran = run.join().unwrap();
            assert_eq!(ran.code, Some(137), "{id} is OOM-killed: {}", ran.stdout);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    events.kill().unwrap();
    let out = events.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    for id in ["hog-1", "hog-2"] {
        let oom = events.lines().filter(|l| l.contains("/tasks/oom")).find(|l| l.contains(id));
        assert!(oom.is_some(), "no /tasks/oom event for {id}:\n{events}");
        ctd.assert_nothing_left(id);
    }
}

#[test]
fn the_corpus_runs_through_containerd_for_every_engine() {
    let ctd = Containerd::start("e2e-corpus", "");
    let programs: std::collections::BTreeSet<&str> = CASES
        .iter()
        .map(|c| c.program)
        .chain(["files", "root_preopen", "stdin", "loop", "env", "grow"])
        .collect();
    let mut files: Vec<(PathBuf, String)> =
        programs.iter().map(|p| (corpus(p), format!("/{p}.wasm"))).collect();
    let existing = ctd.node.root().join("existing.txt");
    std::fs::write(&existing, "from the image\n").unwrap();
    files.push((existing, "/data/existing.txt".into()));
    let spec = ImageSpec {
        name: "docker.io/library/corpus:test",
        files: files.iter().map(|(host, image)| (host.clone(), image.as_str())).collect(),
        symlinks: vec![],
        entrypoint: vec!["/hello.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));

    for (engine, _) in support::engines() {
        let options = ctd.node.root().join(format!("{engine}.toml"));
        std::fs::write(&options, format!("engine = \"{engine}\"\n")).unwrap();
        let with = ["--runtime", "io.containerd.wasm.v1", "--runtime-config-path", path_str(&options)];
        let run = |id: &str, args: &[&str]| {
            let mut all = vec!["run", "--rm"];
            all.extend_from_slice(&with);
            all.extend_from_slice(&[spec.name, id]);
            all.extend_from_slice(args);
            ctd.ctr(&all)
        };
        for (i, case) in CASES.iter().enumerate() {
            let program = format!("/{}.wasm", case.program);
            let mut args = vec![program.as_str()];
            args.extend_from_slice(case.args);
            let ran = run(&format!("{engine}-{i}"), &args);
            assert_eq!(ran.code, Some(case.status), "{engine} {program} {:?}: {}", case.args, ran.stderr);
            assert_eq!(ran.stdout, case.expected_stdout(&program), "{engine} {program}");
            if let Some(fragment) = case.stderr {
                assert!(ran.stderr.contains(fragment), "{engine} {program}: {}", ran.stderr);
            }
        }
        // The container's environment: the image's PATH plus what `ctr run --env` adds.
        let id = format!("{engine}-env");
        let mut all = vec!["run", "--rm", "--env", "GREETING=hi there"];
        all.extend_from_slice(&with);
        all.extend_from_slice(&[spec.name, &id, "/env.wasm"]);
        let ran = ctd.ctr(&all);
        ran.assert_ok();
        assert!(ran.stdout.lines().any(|l| l == "GREETING=hi there"), "{engine}: {}", ran.stdout);
        assert!(ran.stdout.lines().any(|l| l.starts_with("PATH=")), "{engine}: {}", ran.stdout);

        // A memory cap from the runtime options' [settings] table: 1 MiB = 16 pages.
        let capped = ctd.node.root().join(format!("{engine}-capped.toml"));
        std::fs::write(&capped, format!("engine = \"{engine}\"\n[settings]\nmax_memory_bytes = 1048576\n"))
            .unwrap();
        let ran = ctd.ctr(&[
            "run",
            "--rm",
            "--runtime",
            "io.containerd.wasm.v1",
            "--runtime-config-path",
            path_str(&capped),
            spec.name,
            &format!("{engine}-grow"),
            "/grow.wasm",
        ]);
        assert_eq!(ran.code, Some(16), "{engine}: {}", ran.stderr);

        let ran = run(&format!("{engine}-files"), &["/files.wasm", "/data"]);
        let mut lines: Vec<&str> = ran.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["entry: existing.txt", "entry: note.txt", "read back: written by wasm"],
            "{engine}"
        );
        // The container's root, writable at the top (Wasmer's own root shadowed it).
        let ran = run(&format!("{engine}-root"), &["/root_preopen.wasm"]);
        assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), "ok\n"), "{engine}: {}", ran.stderr);

        // stdin through the FIFO.
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(&with);
        all.extend_from_slice(&[spec.name, "stdin", "/stdin.wasm"]);
        let mut child = ctd.ctr_command(&all).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"through the fifo\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "through the fifo\n", "{engine}");

        // A long-running module stopped by SIGTERM.
        let id = format!("{engine}-loop");
        let mut detached = vec!["run", "-d"];
        detached.extend_from_slice(&with);
        detached.extend_from_slice(&[spec.name, &id, "/loop.wasm"]);
        ctd.ctr(&detached).assert_ok();
        ctd.wait_for_status(&id, "RUNNING");
        ctd.ctr(&["task", "kill", "-s", "SIGTERM", &id]).assert_ok();
        ctd.wait_for_status(&id, "STOPPED");
        assert!(ctd.remove(&id).contains("exit code 143"), "{engine}");
        ctd.assert_nothing_left(&id);
    }
}
