//! Serving wasi:http components (ABI 1.2 `serve`, the wasmtime plugin): through `run` and
//! as a container through a private containerd, each in a network namespace the test
//! makes, so that traffic never leaves it. GET and POST with a streamed body, requests
//! at once, a trap answered 500 while the server goes on, SIGTERM with a request in
//! flight (it finishes, then the server exits 0), and engines that cannot serve refused
//! with one line.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::containerd::{Containerd, ImageSpec, build_image};
use support::http_component::http_handler;
use support::netns_http::{NetNs, request, wait_for_listener};
use support::{Node, c_plugin, path_str, wasmtime_plugin};

const ADDR: &str = "127.0.0.1:8080";

/// What every server must do, asked from inside `netns`; ends with a `/slow` request in
/// flight while `stop` runs, and returns that request's response.
fn serves_requests(netns: &NetNs, stop: impl FnOnce() + Send) {
    netns.within(|| {
        wait_for_listener(ADDR);
        let hello = request(ADDR, "GET", "/", b"").unwrap();
        assert_eq!((hello.status, hello.body.as_slice()), (200, &b"hello from wasi:http\n"[..]));

        // A body of several chunks, streamed back.
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let echoed = request(ADDR, "POST", "/", &body).unwrap();
        assert_eq!(echoed.status, 200);
        assert!(echoed.body == body, "echoed {} bytes of {}", echoed.body.len(), body.len());

        // Requests at once, each on its own instance.
        std::thread::scope(|scope| {
            let at_once: Vec<_> = (0..8).map(|_| scope.spawn(|| request(ADDR, "GET", "/", b""))).collect();
            for answer in at_once {
                assert_eq!(answer.join().unwrap().unwrap().status, 200);
            }
        });

        // A trap answers its own request and nothing else.
        assert_eq!(request(ADDR, "GET", "/trap", b"").unwrap().status, 500);
        assert_eq!(request(ADDR, "GET", "/", b"").unwrap().status, 200);

        // Stopped with a request in flight: that request still gets its answer.
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| request(ADDR, "GET", "/slow", b""));
            std::thread::sleep(Duration::from_millis(300));
            stop();
            let slow = slow.join().unwrap().expect("the request in flight was cut");
            assert_eq!((slow.status, slow.body.as_slice()), (200, &b"hello from wasi:http\n"[..]));
        });
    });
}

fn wait_with_bound(child: &mut Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("{what} did not end within 10 s of SIGTERM");
}

#[test]
fn run_serves_a_wasi_http_component_until_sigterm() {
    let node = Node::new("http-run");
    node.install("wasmtime", &wasmtime_plugin());
    let netns = NetNs::new("run");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &netns.name])
        .arg(support::shim_bin())
        .args(["run", "--engine", "wasmtime", "--env"])
        .arg(format!("WASMTIME_HTTP_PROXY_SOCKET_ADDR={ADDR}"))
        .arg(http_handler())
        .env("CONTAINERD_SHIM_WASM_CONFIG", node.config())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `ip netns exec` executes the shim in its own place: this is the shim's pid.
    let pid = server.id() as i32;
    serves_requests(&netns, || {
        // SAFETY: kill(2) on the child this test spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });
    let status = wait_with_bound(&mut server, "run");
    let output = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(0), "a stopped server ends with 0; stderr:\n{stderr}");
    assert!(stderr.contains(&format!("serving wasi:http on http://{ADDR}/")), "{stderr}");
    let traps: Vec<&str> = stderr.lines().filter(|l| l.contains("trapped")).collect();
    assert_eq!(traps.len(), 1, "one line per trapped request:\n{stderr}");
}

#[test]
fn containerd_serves_a_wasi_http_component_in_the_pods_network() {
    let ctd = Containerd::start("http-ctd", "default_engine = \"wasmtime\"\n");
    let netns = NetNs::new("ctd");
    let image = "docker.io/library/http-handler:test";
    let spec = ImageSpec {
        name: image,
        files: vec![(http_handler(), "/handler.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/handler.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let with_ns = format!("network:{}", path_str(&netns.path()));
    // The default address (0.0.0.0:8080), as runwasi's images expect.
    ctd.ctr(&["run", "-d", "--runtime", "io.containerd.wasm.v1", "--with-ns", &with_ns, image, "web"])
        .assert_ok();
    ctd.wait_for_status("web", "RUNNING");
    serves_requests(&netns, || ctd.ctr(&["task", "kill", "-s", "SIGTERM", "web"]).assert_ok());
    ctd.wait_for_status("web", "STOPPED");
    // ctr names the exit code only when it is not 0 (143 for a SIGTERM that ends it).
    let removed = ctd.remove("web");
    assert!(!removed.contains("exit code"), "a stopped server ends with 0: {removed}");
    ctd.assert_nothing_left("web");

    // A wrong address fails the create with one line, and leaves nothing.
    let ran = ctd.run(
        &["--with-ns", &with_ns, "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=port-80"],
        image,
        "bad-addr",
        &[],
    );
    assert_ne!(ran.code, Some(0));
    assert!(
        ran.stderr.contains("WASMTIME_HTTP_PROXY_SOCKET_ADDR=port-80 is not an IP:PORT"),
        "{}",
        ran.stderr
    );
    ctd.assert_nothing_left("bad-addr");
}

#[test]
fn engines_that_cannot_serve_are_refused_with_one_line() {
    let node = Node::new("http-refused");
    // A 1.0 plugin: its table has no `serve`, and its bit 5 is not 1.2's http-serve.
    node.install("echo_1_0", &c_plugin("echo_1_0"));
    let listed = node.run(&["engines"]);
    let line = listed.stdout.lines().find(|l| l.starts_with("echo_1_0")).expect(&listed.stdout);
    assert!(!line.contains("http-serve"), "{line}");
    let component = http_handler();
    let ran = node.run(&["run", "--engine", "echo_1_0", path_str(&component)]);
    ran.assert_error(126, &["the echo_1_0 engine cannot serve wasi:http components", "http-serve"]);
    // The other engines run no components at all, and say so first.
    for (engine, plugin) in support::engines().into_iter().filter(|(name, _)| *name != "wasmtime") {
        node.install(engine, &plugin);
        let ran = node.run(&["run", "--engine", engine, path_str(&component)]);
        ran.assert_error(126, &[&format!("the {engine} engine does not support components")]);
    }
}
