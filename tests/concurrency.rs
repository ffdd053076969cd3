//! Correct under concurrent load: one shim serving many tasks at once loses none, every
//! Wait returns, every exit reaches containerd once, nothing is left behind. Driven
//! through the shim's ttrpc task API (as a pod's shim is driven) and through a real
//! containerd. No timing is asserted: a task that fails or never ends fails the test.
//!
//! Each test here failed before the fix it guards (see docs/performance.md, "Concurrency").

mod support;

use std::fs;
use std::time::Duration;

use support::stress::bundle::Workload;
use support::stress::shim::{CALL_BOUND, Runtime, ShimServer, WAIT_BOUND};
use support::stress::{Load, leaks, run_parallel, through_containerd};

const WASMTIME: Runtime = Runtime::Wasm { engine: "wasmtime" };

/// Fails unless the shim left nothing behind, then shuts it down.
fn assert_nothing_left_and_shut_down(shim: &ShimServer) {
    let left = shim.leftovers();
    assert!(left.is_empty(), "left behind: {}\nshim log:\n{}", left.summary(), shim.log());
    shim.shutdown().unwrap();
}

/// Every task's exit reached "containerd" exactly once, and containerd, which reads a
/// task's life from its events, got them in order.
fn assert_events_of_each(shim: &ShimServer, ids: &[String]) {
    let wrong = shim.events.wait_for_exits(ids, Duration::from_secs(30));
    assert!(wrong.is_empty(), "tasks without exactly one TaskExit event: {wrong:?}");
    // The delete events follow the exits.
    std::thread::sleep(Duration::from_millis(500));
    for id in ids {
        assert_eq!(
            shim.events.topics(id),
            ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"],
            "events of {id}"
        );
    }
}

/// Fails with the run's report and the shim's log.
fn assert_clean(outcome: &support::stress::Outcome, shim: &ShimServer) {
    assert!(
        outcome.failures.is_empty() && outcome.left.is_empty(),
        "{}\nshim log:\n{}",
        outcome.report(),
        shim.log()
    );
}

#[test]
fn many_tasks_at_once_through_one_shim_over_ttrpc() {
    let shim = ShimServer::start("conc-ttrpc", WASMTIME, Workload::WasmHello);
    let load = Load { tasks: 200, parallel: 16 };
    let outcome = shim.run("wasm shim, ttrpc", load, Workload::WasmHello);
    println!("{}", outcome.report());
    assert_clean(&outcome, &shim);
    let ids: Vec<String> = (0..load.tasks).map(|i| shim.task_id(i)).collect();
    assert_events_of_each(&shim, &ids);
    shim.shutdown().unwrap();
}

#[test]
fn many_tasks_at_once_through_containerd() {
    let node = through_containerd::Node::start("conc-ctd", "wasmtime");
    let outcome = node.run("c", through_containerd::Runtime::Wasm, Load { tasks: 50, parallel: 8 });
    println!("{}", outcome.report());
    assert!(
        outcome.failures.is_empty() && outcome.left.is_empty(),
        "{}\ncontainerd log:\n{}",
        outcome.report(),
        node.ctd.log()
    );
}

/// containerd starts the shim in the first container's bundle; that container is
/// deleted (its bundle removed) while the pod's others are created and started.
#[test]
fn the_first_container_deleted_while_others_start() {
    let shim = ShimServer::start("conc-first", WASMTIME, Workload::WasmLoop);
    let first = shim.task_id(0);
    shim.create(&first, Workload::WasmLoop).unwrap();
    shim.api.start(&first, CALL_BOUND).unwrap();
    let (latencies, failures, _) = run_parallel(
        Load { tasks: 41, parallel: 8 },
        |i| {
            if i == 0 {
                shim.api.kill(&first, libc::SIGKILL as u32, CALL_BOUND)?;
                shim.api.wait(&first, WAIT_BOUND)?;
                shim.delete(&first)?;
                Ok(Duration::ZERO)
            } else {
                shim.run_task(i, Workload::WasmHello)
            }
        },
        |_| {},
    );
    assert!(failures.is_empty(), "{failures:?}\nshim log:\n{}", shim.log());
    assert_eq!(latencies.len(), 41);
    assert_nothing_left_and_shut_down(&shim);
}

/// Create, Start, Kill, Wait and Delete of long-running tasks interleaved with tasks
/// that exit on their own, all in one pod's shim.
#[test]
fn create_start_kill_and_delete_at_once_in_one_pod() {
    let shim = ShimServer::start("conc-kill", WASMTIME, Workload::WasmLoop);
    let (_, failures, _) = run_parallel(
        Load { tasks: 60, parallel: 12 },
        |i| {
            if i % 2 == 0 {
                return shim.run_task(i, Workload::WasmHello);
            }
            let id = shim.task_id(i);
            let run = || -> Result<(), String> {
                shim.create(&id, Workload::WasmLoop)?;
                if i % 3 != 0 {
                    shim.api.start(&id, CALL_BOUND)?;
                }
                let signal = if i % 4 == 1 { libc::SIGTERM } else { libc::SIGKILL };
                shim.api.kill(&id, signal as u32, CALL_BOUND)?;
                let status = shim.api.wait(&id, WAIT_BOUND)?.exit_status;
                if status != 128 + signal as u32 {
                    return Err(format!("{id}: exit status {status} after signal {signal}"));
                }
                Ok(())
            };
            let ran = run();
            let deleted = shim.delete(&id);
            ran.and(deleted).map(|_| Duration::ZERO)
        },
        |_| {},
    );
    assert!(failures.is_empty(), "{failures:?}\nshim log:\n{}", shim.log());
    assert_nothing_left_and_shut_down(&shim);
}

/// OCI hooks run by the runtime while other tasks start and exit: each hook runs once per
/// task and its status is never taken by the shim's reaper.
#[test]
fn hooks_under_concurrency() {
    let mut shim = ShimServer::start("conc-hooks", WASMTIME, Workload::WasmHello);
    let hook_dir = shim.work().join("hooks");
    fs::create_dir_all(&hook_dir).unwrap();
    let dir = hook_dir.clone();
    shim.spec_edit = Some(Box::new(move |id, spec| {
        let hook = |name: &str| {
            serde_json::json!({
                "path": "/bin/busybox",
                "args": ["busybox", "sh", "-c", format!("echo {name} >> {}/{id}", dir.display())],
            })
        };
        spec["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    }));
    let load = Load { tasks: 40, parallel: 8 };
    let outcome = shim.run("hooks", load, Workload::WasmHello);
    assert_clean(&outcome, &shim);
    for i in 0..load.tasks {
        let ran = fs::read_to_string(hook_dir.join(shim.task_id(i))).unwrap_or_default();
        let mut lines: Vec<&str> = ran.lines().collect();
        lines.sort();
        assert_eq!(lines, ["createRuntime", "poststart", "poststop", "prestart"], "hooks of task {i}");
    }
    shim.shutdown().unwrap();
}

/// containerd restarts (its event address refuses, then listens again) while tasks run:
/// exits during the outage and after it all reach the new containerd, once each.
#[test]
fn exits_reach_a_restarted_containerd() {
    let mut shim = ShimServer::start("conc-restart", WASMTIME, Workload::WasmLoop);
    let ids: Vec<String> = (0..6).map(|i| shim.task_id(i)).collect();
    for id in &ids {
        shim.create(id, Workload::WasmLoop).unwrap();
        shim.api.start(id, CALL_BOUND).unwrap();
    }
    shim.events.stop();
    for id in &ids[..3] {
        shim.api.kill(id, libc::SIGKILL as u32, CALL_BOUND).unwrap();
        assert_eq!(shim.api.wait(id, WAIT_BOUND).unwrap().exit_status, 137);
    }
    std::thread::sleep(Duration::from_secs(1));
    shim.events.restart();
    for id in &ids[3..] {
        shim.api.kill(id, libc::SIGKILL as u32, CALL_BOUND).unwrap();
        assert_eq!(shim.api.wait(id, WAIT_BOUND).unwrap().exit_status, 137);
    }
    let wrong = shim.events.wait_for_exits(&ids, Duration::from_secs(30));
    for id in &ids {
        shim.delete(id).unwrap();
    }
    assert!(wrong.is_empty(), "tasks without exactly one TaskExit at the restarted containerd: {wrong:?}");
    shim.shutdown().unwrap();
}

/// A containerd that accepts events and never answers must not stall the shim: tasks are
/// created, run and reaped, and every Wait returns.
#[test]
fn a_hanging_containerd_stalls_nothing() {
    let shim = ShimServer::start("conc-hang", WASMTIME, Workload::WasmHello);
    shim.events.hang(true);
    let outcome = shim.run("hanging containerd", Load { tasks: 20, parallel: 4 }, Workload::WasmHello);
    shim.events.hang(false);
    assert_clean(&outcome, &shim);
    shim.shutdown().unwrap();
}

/// A create that cannot finish (a createRuntime hook that never ends) fails within the
/// request's deadline with one line, and leaves no process, mount, cgroup or state.
#[test]
fn a_create_that_hangs_ends_at_its_deadline() {
    let mut shim = ShimServer::start("conc-deadline", WASMTIME, Workload::WasmHello);
    shim.spec_edit = Some(Box::new(|_, spec| {
        spec["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/busybox", "args": ["busybox", "sleep", "3600"]}],
        });
    }));
    let id = shim.task_id(1);
    let bundle = support::stress::bundle::make_bundle(
        shim.work(),
        &id,
        Workload::WasmHello,
        &shim.cgroup_parent,
        shim.spec_edit.as_ref(),
    );
    let rootfs = support::stress::bundle::shared_rootfs(shim.work(), Workload::WasmHello);
    let request = support::stress::bundle::create_request(&id, &bundle, &rootfs);
    let err = shim.api.create(&request, Duration::from_secs(4)).unwrap_err();
    assert!(err.contains("the create did not finish in time"), "{err}\nshim log:\n{}", shim.log());
    // The shim ends the create at the deadline containerd gave and cleans up after it.
    let mut left = shim.leftovers();
    for _ in 0..100 {
        if left.is_empty() && shim.api.state(&id, CALL_BOUND).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = shim.leftovers();
    }
    assert!(left.is_empty(), "left behind: {}\nshim log:\n{}", left.summary(), shim.log());
    let _ = fs::remove_dir_all(&bundle);
    shim.shutdown().unwrap();
}

/// The shim server's launchers for the wasmtime plugin.
fn wasmtime_launchers(shim: &ShimServer) -> Vec<i32> {
    leaks::children(shim.pid)
        .into_iter()
        .filter(|&p| leaks::cmdline(p).contains("__launcher") && leaks::cmdline(p).contains("wasmtime.so"))
        .collect()
}

/// An operator upgrades a plugin while the shim serves (a package upgrade replaces the
/// file): the next container gets a launcher with the new file, the old launcher exits.
#[test]
fn a_replaced_plugin_gets_a_new_launcher() {
    let shim = ShimServer::start("conc-upgrade", WASMTIME, Workload::WasmHello);
    shim.run_task(1, Workload::WasmHello).unwrap();
    let before = wasmtime_launchers(&shim);
    assert_eq!(before.len(), 1, "one launcher for wasmtime: {before:?}");
    let plugin = shim.work().join("engines/wasmtime.so");
    let staged = shim.work().join("engines/.wasmtime.so.new");
    fs::copy(&plugin, &staged).unwrap();
    fs::rename(&staged, &plugin).unwrap();
    shim.run_task(2, Workload::WasmHello).unwrap();
    let mut after = wasmtime_launchers(&shim);
    for _ in 0..50 {
        if !after.contains(&before[0]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = wasmtime_launchers(&shim);
    }
    assert_eq!(after.len(), 1, "the old launcher exits: before {before:?}, after {after:?}");
    assert_ne!(after, before);
    shim.shutdown().unwrap();
}

/// A launcher that dies (killed, or its plugin crashed it) is replaced: containers keep
/// being created.
#[test]
fn a_killed_launcher_is_replaced() {
    let shim = ShimServer::start("conc-relaunch", WASMTIME, Workload::WasmHello);
    shim.run_task(1, Workload::WasmHello).unwrap();
    for pid in wasmtime_launchers(&shim) {
        // SAFETY: kill(2) on the shim's launcher.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(200));
    let outcome = shim.run("after the launcher died", Load { tasks: 10, parallel: 4 }, Workload::WasmHello);
    assert_clean(&outcome, &shim);
    shim.shutdown().unwrap();
}

/// Containers are forked from the process that loaded the plugin: a plugin that starts a
/// thread when it is loaded is refused with one line (a fork could copy a lock that
/// thread holds), and a native container still runs without it.
#[test]
fn a_plugin_that_starts_threads_at_load_is_refused() {
    let shim = ShimServer::start("conc-threads", Runtime::Wasm { engine: "threaded" }, Workload::WasmHello);
    shim.install_plugin("threaded", &support::c_plugin("threaded"));
    let err = shim.run_task(1, Workload::WasmHello).unwrap_err();
    assert!(err.contains("started 1 thread(s) when it was loaded"), "{err}");
    shim.run_task(2, Workload::NativeTrue).unwrap();
    assert_nothing_left_and_shut_down(&shim);
}

/// containerd's own sequence for the containers of one pod, many at once: `start` (which
/// reuses the pod's server) → Create → Start → Wait → Delete → Shutdown. A Shutdown after
/// one container's delete must never end the server under another container's `start`
/// or in-flight request.
#[test]
fn start_and_shutdown_race_in_one_pod() {
    let shim = ShimServer::start("conc-pod", WASMTIME, Workload::WasmHello);
    let (_, failures, _) = run_parallel(
        Load { tasks: 100, parallel: 3 },
        |i| {
            let id = shim.task_id(i + 1);
            let address = shim.start_action(&id, Workload::WasmHello)?;
            // containerd does some work of its own between start and Create.
            std::thread::sleep(Duration::from_millis(20));
            let api = support::stress::task_api::TaskApi::connect(&address)?;
            let bundle = shim.work().join("bundles").join(&id);
            let rootfs = support::stress::bundle::shared_rootfs(shim.work(), Workload::WasmHello);
            api.create(&support::stress::bundle::create_request(&id, &bundle, &rootfs), CALL_BOUND)?;
            api.start(&id, CALL_BOUND)?;
            let status = api.wait(&id, WAIT_BOUND)?.exit_status;
            api.delete(&id, CALL_BOUND)?;
            let _ = api.shutdown(CALL_BOUND);
            let _ = fs::remove_dir_all(&bundle);
            if status != 0 {
                return Err(format!("{id}: exit status {status}"));
            }
            Ok(Duration::ZERO)
        },
        |_| {},
    );
    assert!(failures.is_empty(), "{failures:?}\nshim log:\n{}", shim.log());
}

/// A program that ends at once (the C echo plugin's) exits while Start is still being
/// answered: containerd must still see TaskStart before TaskExit.
#[test]
fn events_arrive_in_order_for_programs_that_end_at_once() {
    let shim = ShimServer::start("conc-order", Runtime::Wasm { engine: "echo" }, Workload::WasmHello);
    shim.install_plugin("echo", &support::c_plugin("echo"));
    let load = Load { tasks: 100, parallel: 4 };
    let (_, failures, _) = run_parallel(
        load,
        |i| {
            let id = shim.task_id(i + 1);
            let run = || -> Result<(), String> {
                shim.create(&id, Workload::WasmHello)?;
                shim.api.start(&id, CALL_BOUND)?;
                shim.api.wait(&id, WAIT_BOUND)?;
                Ok(())
            };
            let ran = run();
            ran.and(shim.delete(&id)).map(|_| Duration::ZERO)
        },
        |_| {},
    );
    assert!(failures.is_empty(), "{failures:?}");
    let ids: Vec<String> = (1..=load.tasks).map(|i| shim.task_id(i)).collect();
    assert_events_of_each(&shim, &ids);
    shim.shutdown().unwrap();
}

/// A real containerd restarts while wasm tasks of one pod run: it reconnects to the shim,
/// and the exits of tasks killed after the restart reach it as events.
#[test]
fn a_restarted_containerd_gets_later_exits() {
    use std::io::{BufRead, BufReader};
    let mut ctd =
        support::containerd::Containerd::start("conc-ctd-restart", "default_engine = \"wasmtime\"\n");
    let spec = support::containerd::ImageSpec {
        name: "docker.io/library/loop:test",
        files: vec![(support::corpus("loop"), "/loop.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/loop.wasm"],
    };
    ctd.import(&support::containerd::build_image(&spec, ctd.node.root()));
    let pod = "io.kubernetes.cri.sandbox-id=restart-pod";
    for id in ["r1", "r2", "r3"] {
        let ran =
            ctd.ctr(&["run", "-d", "--annotation", pod, "--runtime", "io.containerd.wasm.v1", spec.name, id]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    ctd.restart();
    let mut events = ctd.ctr_command(&["events"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let lines = BufReader::new(events.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    for id in ["r1", "r2", "r3"] {
        let killed = ctd.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        assert_eq!(
            killed.code,
            Some(0),
            "kill {id} after the restart: {}\ncontainerd log:\n{}",
            killed.stderr,
            ctd.log()
        );
    }
    // Each exit arrives (ctr events prints "<time> <namespace> /tasks/exit {...id...}").
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if line.contains("/tasks/exit") {
                let _ = seen_tx.send(line);
            }
        }
    });
    let mut missing: Vec<&str> = vec!["r1", "r2", "r3"];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        if let Ok(line) = seen_rx.recv_timeout(Duration::from_millis(200)) {
            missing.retain(|id| !line.contains(&format!("\"{id}\"")));
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        missing.is_empty(),
        "no TaskExit after the restart for {missing:?}\ncontainerd log:\n{}",
        ctd.log()
    );
    for id in ["r1", "r2", "r3"] {
        ctd.ctr(&["task", "rm", id]);
        ctd.ctr(&["containers", "rm", id]);
    }
}

/// A program's output reaches containerd's FIFO although containerd's end is opened late
/// (its client opens it from a goroutine; under load that runs after the program could have
/// written and ended). Before the fix the output went with the pipe, the reader found
/// nothing (`ctr run --rm` printed nothing for 1 task in 300 at 8 in parallel).
#[test]
fn output_reaches_a_fifo_whose_reader_opens_late() {
    use support::stress::bundle::{create_request, make_bundle, shared_rootfs};
    let shim = ShimServer::start("conc-late-reader", WASMTIME, Workload::WasmHello);
    let id = shim.task_id(1);
    let bundle = make_bundle(shim.work(), &id, Workload::WasmHello, &shim.cgroup_parent, None);
    // Outside the bundle, which Delete removes.
    let fifo = shim.work().join("late-reader.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path this test owns.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    // The reader comes 500 ms after the Create was sent, as a late goroutine would.
    let (opening_tx, opening) = std::sync::mpsc::channel();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            opening_tx.send(std::time::Instant::now()).unwrap();
            fs::read_to_string(&fifo).unwrap()
        })
    };
    let mut request = create_request(&id, &bundle, &shared_rootfs(shim.work(), Workload::WasmHello));
    request.stdout = fifo.display().to_string();
    shim.api.create(&request, CALL_BOUND).unwrap();
    // Create waited for the reader: whatever the timing, the program cannot have run yet.
    let created = std::time::Instant::now();
    let began_opening =
        opening.try_recv().expect("Create answered before containerd's reader opened the FIFO");
    assert!(began_opening < created);
    shim.api.start(&id, CALL_BOUND).unwrap();
    assert_eq!(shim.api.wait(&id, WAIT_BOUND).unwrap().exit_status, 0);
    shim.delete(&id).unwrap();
    // With the output lost, the reader's open would wait for a writer that never comes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reader.is_finished(), "the FIFO's reader got nothing: the output was lost");
    assert_eq!(reader.join().unwrap(), "hello from wasm\n");
    assert_nothing_left_and_shut_down(&shim);
}
