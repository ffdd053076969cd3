//! What a wasm container's process is made of, through the shim's task API: its threads,
//! which must not grow with the node's CPUs (a node has many containers).

mod support;

use support::stress::shim::ShimServer;

/// The names of the threads of `pid`.
fn thread_names(pid: i32) -> Vec<String> {
    let tasks =
        std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect()).unwrap_or(Vec::new());
    tasks
        .iter()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// wasmtime-wasi does a program's I/O on a tokio runtime. Without one the plugin gives it,
/// it makes its own with a worker thread per CPU: 64 threads in every container of a
/// 64-core node (before the fix, one per CPU here too). The plugin's has one worker.
#[test]
fn a_wasm_containers_threads_do_not_grow_with_the_cpus() {
    let (shim, id, pid) = ShimServer::running_loop("process-threads", "wasmtime");
    // loop.wasm printed `started` through WASI: its I/O runtime exists by now.
    let names = thread_names(pid);
    let workers = names.iter().filter(|name| name.starts_with("tokio-rt-worker")).count();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(workers, 1, "{cpus} CPUs here; the container's threads: {names:?}");
    assert!(names.len() <= 4, "the container's threads: {names:?}");
    assert_eq!(shim.end_and_delete(&id, libc::SIGKILL), 137);
    shim.shutdown().unwrap();
}
