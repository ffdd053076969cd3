//! Serving `wasi:http/proxy` components (ABI 1.2 `serve`), as `wasmtime serve` does:
//! HTTP/1.1 on one TCP listener, one fresh store and instance per request from a
//! component pre-instantiated once, requests handled concurrently on a multi-threaded
//! tokio runtime (a thread per CPU). A trap answers its request with 500 and the server
//! goes on. The listener and the stop descriptor are watched on a runtime of their own,
//! on the calling thread, so that requests computing on every worker thread cannot keep
//! the server from accepting or stopping. When the host's stop descriptor becomes
//! readable (it turns SIGTERM into that), the listener closes, idle connections close,
//! and requests in flight finish, for at most [`DRAIN_BOUND`].
//!
//! Outgoing requests (`wasi:http/outgoing-handler`) go through wasmtime-wasi-http's own
//! client (HTTP, and HTTPS with the webpki roots), from the container's network.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use shim_wasm_abi::plugin::{PluginError, ServeRequest};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Store, StoreLimits};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::settings::Settings;
use crate::wasi::{limits, owned};

/// How long requests in flight may take to finish after a stop; containerd's own
/// stop timeout (SIGKILL) usually comes first.
const DRAIN_BOUND: Duration = Duration::from_secs(30);

/// What one request's instance gets.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

/// The request's program context, owned, for every instance: args, env, preopens,
/// working directory, and the container's stdout and stderr (no stdin: requests carry
/// their input).
struct Template {
    args: Vec<String>,
    env: Vec<(String, String)>,
    preopens: Vec<(String, String)>,
    cwd: Option<String>,
    stdout: File,
    stderr: File,
    settings: Settings,
}

impl Template {
    fn state(&self) -> Result<State, PluginError> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&self.args)
            .envs(&self.env)
            .stdout(OutputFile::new(self.stdout.try_clone().map_err(io("stdout"))?))
            .stderr(OutputFile::new(self.stderr.try_clone().map_err(io("stderr"))?));
        if let Some(cwd) = &self.cwd {
            builder.initial_cwd(cwd);
        }
        for (host, guest) in &self.preopens {
            builder
                .preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|e| PluginError::io(format!("cannot preopen {host} as {guest}: {e:#}")))?;
        }
        Ok(State {
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: limits(&self.settings),
        })
    }

    /// One line on the container's stderr (where `ctr` and `kubectl logs` show it).
    fn say(&self, line: &str) {
        let _ = writeln!(&self.stderr, "containerd-shim-wasm: {line}");
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> PluginError {
    move |e| PluginError::io(format!("cannot duplicate the {what} descriptor: {e}"))
}

struct Server {
    pre: ProxyPre<State>,
    template: Template,
}

/// Serves `component` until the stop descriptor is readable; 0 after a stop.
pub fn serve(
    engine: &wasmtime::Engine,
    settings: &Settings,
    component: &Component,
    request: &ServeRequest<'_>,
) -> Result<i32, PluginError> {
    let run = &request.run;
    let template = Template {
        args: run.args.iter().map(|a| a.to_string()).collect(),
        env: run.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        preopens: run.preopens.iter().map(|p| (p.host_path.into(), p.guest_path.into())).collect(),
        cwd: run.cwd.map(String::from),
        stdout: owned(run.stdout, "stdout")?,
        stderr: owned(run.stderr, "stderr")?,
        settings: settings.clone(),
    };
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
        .map_err(|e| PluginError::internal(format!("{e:#}")))?;
    let pre = linker.instantiate_pre(component).and_then(ProxyPre::new).map_err(|e| {
        // Not InvalidModule: the component compiled (from the cache, perhaps), and the
        // host would take that for a stale artifact and compile it again for nothing.
        PluginError::new(
            shim_wasm_abi::Status::Unsupported,
            format!(
                "cannot serve the component as a wasi:http/proxy handler: {}",
                shim_wasm_abi::plugin::one_line(&format!("{e:#}"))
            ),
        )
    })?;
    let stop = request
        .stop
        .try_clone_to_owned()
        .map_err(|e| PluginError::io(format!("cannot duplicate the stop descriptor: {e}")))?;
    let runtime_error =
        |e: std::io::Error| PluginError::internal(format!("cannot start the HTTP server's runtime: {e}"));
    let workers = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .thread_name("wasi-http")
        .build()
        .map_err(runtime_error)?;
    let front = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(runtime_error)?;
    let server = Arc::new(Server { pre, template });
    let code = front.block_on(accept_until_stopped(server, request.listen, stop, workers.handle()));
    // Requests still running after the drain bound are left to the process's exit.
    workers.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn accept_until_stopped(
    server: Arc<Server>,
    listen: SocketAddr,
    stop: OwnedFd,
    workers: &tokio::runtime::Handle,
) -> Result<i32, PluginError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        PluginError::io(format!(
            "cannot listen on {listen}: {e}; set WASMTIME_HTTP_PROXY_SOCKET_ADDR to a free IP:PORT"
        ))
    })?;
    // SAFETY: an OwnedFd always returns the descriptor it owns, open until it is dropped
    // with the AsyncFd.
    let stop = unsafe { AsyncFd::register(stop) }.map_err(|e| {
        PluginError::io(format!("cannot watch the stop descriptor: {}", std::io::Error::from(e)))
    })?;
    server.template.say(&format!("serving wasi:http on http://{listen}/"));
    let (stopping, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                // Handed to the workers' runtime, whose reactor then watches it.
                Ok((stream, _peer)) => match stream.into_std() {
                    Ok(stream) => {
                        connections.spawn_on(connection(server.clone(), stream, stopped.clone()), workers);
                    }
                    Err(e) => server.template.say(&format!("cannot take an accepted connection: {e}")),
                },
                // Out of descriptors, a connection reset before accept: keep serving.
                Err(e) => {
                    server.template.say(&format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.readable() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained =
        tokio::time::timeout(DRAIN_BOUND, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        server.template.say(&format!(
            "{} connections were still busy {} s after the stop; ending them",
            connections.len(),
            DRAIN_BOUND.as_secs()
        ));
    }
    Ok(0)
}

/// Serves one connection's requests; after a stop, finishes the request in flight and
/// closes.
async fn connection(server: Arc<Server>, stream: std::net::TcpStream, mut stopped: watch::Receiver<bool>) {
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
    let service = hyper::service::service_fn(move |request| {
        let server = server.clone();
        async move { Ok::<_, std::convert::Infallible>(server.handle(request).await) }
    });
    // The timer gives hyper its default bound on reading a request's head (30 s).
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

impl Server {
    /// One request on a fresh instance; any failure before the response is 500.
    async fn handle(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        match self.respond(request).await {
            Ok(response) => response,
            Err(message) => {
                self.template.say(&message);
                let body = http_body_util::Full::new(bytes::Bytes::from_static(b"internal server error\n"))
                    .map_err(|never| match never {})
                    .boxed_unsync();
                let mut response = hyper::Response::new(body);
                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }

    async fn respond(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, String> {
        let mut store = Store::new(self.pre.engine(), self.template.state().map_err(|e| e.to_string())?);
        store.limiter(|state| &mut state.limits);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let http = |e: wasmtime::Error| format!("cannot pass the request to the component: {e:#}");
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, request).map_err(http)?;
        let outparam = store.data_mut().http().new_response_outparam(sender).map_err(http)?;
        let pre = self.pre.clone();
        // Its own task: the body may still stream after the response's head is sent.
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(format!("the wasi:http handler answered with error {code:?}")),
            // The handler ended without `response-outparam.set`: a trap, or it forgot.
            Err(_) => Err(match task.await {
                Ok(Ok(())) => "the wasi:http handler returned without setting a response".to_string(),
                Ok(Err(e)) => {
                    format!(
                        "the wasi:http handler trapped: {}",
                        shim_wasm_abi::plugin::one_line(&format!("{e:#}"))
                    )
                }
                Err(e) => format!("the wasi:http handler failed: {e}"),
            }),
        }
    }
}
