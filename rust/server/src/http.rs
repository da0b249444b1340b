//! The listener: binds (loopback by default), accepts up to `max_connections`, serves each
//! connection with hyper's HTTP/1.1 (a head must arrive within `read_timeout`; malformed
//! HTTP gets hyper's bare 400 and the connection is closed; a client that reads nothing of
//! what it is sent for `idle_timeout` is dropped) and shuts down gracefully.

use crate::app;
use crate::config::{ServerConfig, MAX_THREADS};
use crate::state::AppState;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    state: Arc<AppState>,
}

impl Server {
    /// Loads every model (an error names the model and file) and binds the address.
    pub async fn bind(config: &ServerConfig) -> Result<Server, String> {
        let state = Arc::new(AppState::new(config)?);
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let router = app::router(state.clone(), &config.cors)?;
        Ok(Server { listener, router, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets open requests finish and closes the open
    /// streams (an error message and close 1001, going away), waiting for both at most
    /// `read_timeout`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let limits = self.state.limits.clone();
        let conns = Arc::new(Semaphore::new(limits.max_connections));
        // set on shutdown: each connection finishes its request in flight and closes
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.read_timeout).max_buf_size(64 * 1024);
        tokio::pin!(shutdown);
        let trim = tokio::spawn(trim_memory());
        loop {
            let (stream, _) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(s) => s,
                    // out of descriptors and the like: wait a moment rather than spin
                    Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(10)).await; continue }
                },
                _ = &mut shutdown => break,
            };
            let Ok(permit) = conns.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let svc = TowerToHyperService::new(self.router.clone());
            let io = TokioIo::new(Stalled::new(stream, limits.idle_timeout));
            let conn = builder.serve_connection(io, svc).with_upgrades();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(permit);
            });
        }
        drop(self.listener);
        trim.abort();
        let _ = stop_tx.send(true);
        self.state.shut_down();
        // wait (bounded) for the connections to hand back their permits and the streams to close
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let drained = async {
            let _ = conns.acquire_many(all).await;
            self.state.streams_closed().await;
        };
        let _ = tokio::time::timeout(limits.read_timeout, drained).await;
    }
}

/// A connection whose writes fail when the client has taken nothing for `limit`: hyper then
/// drops the connection and the answer it was writing (a `/v1/segments` worker stops at
/// its next line), rather than holding them for a reader that never comes. Any progress
/// starts the wait again, so a slow reader is served at its own pace.
struct Stalled<S> {
    io: S,
    limit: Duration,
    since: Option<Pin<Box<Sleep>>>,
}

impl<S> Stalled<S> {
    fn new(io: S, limit: Duration) -> Stalled<S> {
        Stalled { io, limit, since: None }
    }

    /// `r` as it is, except a write still waiting `limit` after it first had to wait.
    fn guard(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if !r.is_pending() {
            self.since = None;
            return r;
        }
        let limit = self.limit;
        let since = self.since.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match since.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.since = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {} s", limit.as_secs_f64()),
                )))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalled<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalled<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.guard(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The line a server bound beyond loopback with no API key prints after its address: other
/// machines can use it, and the user chose the address, so it is said, not refused.
pub fn exposure_warning(addr: std::net::SocketAddr, has_key: bool) -> Option<String> {
    (!addr.ip().is_loopback() && !has_key).then(|| {
        format!(
            "warning: {} is reachable from other machines and no --api-key is set: anyone who can \
             reach it may use it (--api-key KEY, or bind 127.0.0.1)",
            addr.ip()
        )
    })
}

/// `serlaq-rt serve` / `serlaq serve`: loads the models, binds, announces one line with the
/// address (and [`exposure_warning`]; the caller prefixes its program's name), serves until
/// Ctrl-C (SIGINT) or SIGTERM.
pub fn run_blocking(config: &ServerConfig, mut announce: impl FnMut(&str)) -> Result<(), String> {
    if config.threads > MAX_THREADS {
        return Err(format!("--threads {}: at most {MAX_THREADS} (0: one per core)", config.threads));
    }
    let threads =
        if config.threads > 0 { config.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        // audio work runs on the blocking pool; as many threads as cores keeps it CPU-bound
        .max_blocking_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let server = Server::bind(config).await?;
        let names = server.state.models.names().join(", ");
        announce(&format!("serving {names} on http://{} (Ctrl-C stops)", server.local_addr()));
        if let Some(line) = exposure_warning(server.local_addr(), config.api_key.is_some()) {
            announce(&line);
        }
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

/// glibc keeps the memory of freed request bodies and connection buffers in its arenas;
/// every 2 s it is handed back, so RSS returns to its resting size after a burst of load.
async fn trim_memory() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free heap pages; it has no preconditions
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::{exposure_warning, run_blocking};
    use crate::config::{ServerConfig, MAX_THREADS};

    #[test]
    fn too_many_threads_is_refused_before_any_starts() {
        let config = ServerConfig { threads: MAX_THREADS + 1, ..ServerConfig::default() };
        let err = run_blocking(&config, |_| panic!("nothing is announced")).unwrap_err();
        assert_eq!(err, "--threads 1025: at most 1024 (0: one per core)");
    }

    #[test]
    fn a_server_open_to_other_machines_without_a_key_says_so() {
        let all = "0.0.0.0:8000".parse().unwrap();
        let line = exposure_warning(all, false).expect("a warning");
        assert!(line.starts_with("warning: 0.0.0.0 is reachable from other machines") && line.contains("--api-key"));
        assert_eq!(exposure_warning(all, true), None, "a key guards it");
        assert_eq!(exposure_warning("127.0.0.1:8000".parse().unwrap(), false), None, "loopback, the default");
        assert_eq!(exposure_warning("[::1]:8000".parse().unwrap(), false), None);
        assert!(exposure_warning("192.168.1.20:80".parse().unwrap(), false).is_some());
    }
}
