//! HTTPS server (hyper over tokio-rustls) handing each request, with the peer's certificate
//! facts, to a handler.

use crate::net::tls::{common_name_of, subject_of, version_name};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// Longest TLS handshake accepted before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed handshake, how long the (already sent) alert is given to reach the peer
/// before the socket is closed.
const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub addr: Option<std::net::SocketAddr>,
    /// CN of the client certificate, when one was presented.
    pub common_name: Option<String>,
    pub subject: Option<String>,
    pub tls_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Request target as received: the path, with `?query` when there is one.
    pub path: String,
    /// Headers in the order received (names lower-case, as normalised by hyper).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Peer,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Headers to send, in order. `Content-Length` is always computed from the body (a
    /// `Content-Length` or `Transfer-Encoding` given here is ignored); invalid names or
    /// values are skipped.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;
/// Called with the peer address and the error when a TLS handshake fails (e.g. the client
/// aborted it because it does not trust our certificate).
pub type TlsErrorHook = Arc<dyn Fn(SocketAddr, String) + Send + Sync>;

/// A response with this status is not sent: the connection is closed instead (to simulate a
/// peer that drops the connection).
pub const DROP_CONNECTION: u16 = 0;

/// Bind a TCP listener (`127.0.0.1:0` for an ephemeral port), with SO_REUSEADDR: a fixed
/// port can be bound again at once after the previous listener on it is closed, even while
/// connections it accepted linger in TIME_WAIT or are still open on the client's side (an
/// address with a listener on it is still refused).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let err =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let mut last = None;
    for sa in tokio::net::lookup_host(addr).await.map_err(err)? {
        let socket = match sa {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(err)?;
        socket.set_reuseaddr(true).map_err(err)?;
        match socket.bind(sa).and_then(|()| socket.listen(1024)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    })))
}

/// Accept connections on `listener` until the task is dropped or aborted. Dropping or
/// aborting it also closes every open connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Handler,
) {
    serve_with(listener, tls, handler, None).await
}

/// [`serve`], reporting failed TLS handshakes to `on_tls_error`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Handler,
    on_tls_error: Option<TlsErrorHook>,
) {
    serve_until(listener, tls, handler, on_tls_error, None).await
}

/// [`serve_with`] until `stop` fires (or its sender is dropped): then the listener is closed
/// and every open connection is closed and awaited before this returns.
async fn serve_until(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Handler,
    on_tls_error: Option<TlsErrorHook>,
    stop: Option<oneshot::Receiver<()>>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    let stopped = async move {
        match stop {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(acceptor.clone(), stream, addr, handler.clone(), on_tls_error.clone()));
                }
                // E.g. too many open files: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Aborts every connection task and waits until each is gone (its socket closed).
    connections.shutdown().await;
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    handler: Handler,
    on_tls_error: Option<TlsErrorHook>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream).into_fallible())
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err((e, stream))) => {
            if let Some(hook) = &on_tls_error {
                hook(addr, e.to_string());
            }
            return linger_close(stream).await;
        }
        Err(_) => {
            if let Some(hook) = &on_tls_error {
                hook(addr, "TLS handshake not completed in time".into());
            }
            return;
        }
    };
    let session = tls.get_ref().1;
    let leaf = session.peer_certificates().and_then(|c| c.first());
    let peer = Peer {
        addr: Some(addr),
        common_name: leaf.and_then(|c| common_name_of(c)),
        subject: leaf.and_then(|c| subject_of(c)),
        tls_version: session.protocol_version().map(version_name),
    };
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let handler = handler.clone();
        let peer = peer.clone();
        async move {
            let request = read_request(req, peer)
                .await
                .map_err(std::io::Error::other)?;
            let response = handler(request).await;
            if response.status == DROP_CONNECTION {
                return Err(std::io::Error::other("connection dropped on purpose"));
            }
            Ok::<_, std::io::Error>(build_response(response))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .title_case_headers(true)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Close after a failed handshake without resetting the connection, so that the alert
/// rustls already wrote reaches the client (it would be lost if unread client data made the
/// kernel answer with RST).
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn read_request(req: hyper::Request<Incoming>, peer: Peer) -> Result<Request, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        peer,
    })
}

fn build_response(response: Response) -> hyper::Response<Full<Bytes>> {
    let status = http::StatusCode::from_u16(response.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = hyper::Response::builder().status(status);
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let length = response.body.len();
    builder
        .header(http::header::CONTENT_LENGTH, length)
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| {
            let mut fallback = hyper::Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}

/// A server running in its own task; stopped on [`Server::shutdown`], aborted on drop.
pub struct Server {
    /// The bound address (the real port when started on port 0).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Bind `addr` (e.g. `127.0.0.1:0`) and serve in a spawned task.
    pub async fn start(
        addr: &str,
        tls: Arc<rustls::ServerConfig>,
        handler: Handler,
    ) -> std::io::Result<Server> {
        Self::start_with(addr, tls, handler, None).await
    }

    /// [`Server::start`], reporting failed TLS handshakes to `on_tls_error`.
    pub async fn start_with(
        addr: &str,
        tls: Arc<rustls::ServerConfig>,
        handler: Handler,
        on_tls_error: Option<TlsErrorHook>,
    ) -> std::io::Result<Server> {
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve_until(
            listener,
            tls,
            handler,
            on_tls_error,
            Some(stopped),
        ));
        Ok(Server {
            addr,
            task,
            stop: Some(stop),
        })
    }

    /// `https://127.0.0.1:<port><path>` (the loopback address replaces an unspecified one).
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("https://{addr}{path}")
    }

    /// Stop accepting, close the listening socket and every open connection, and return once
    /// all are closed: the address can then be bound again.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Awaited through a mutable reference: `self` keeps its handle for `Drop`.
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_sets_content_length_and_skips_bad_headers() {
        let r = build_response(Response {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/xml".into()),
                ("Content-Length".into(), "999".into()),
                ("bad name".into(), "x".into()),
            ],
            body: b"hello".to_vec(),
        });
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], "5");
        assert_eq!(r.headers()["content-type"], "text/xml");
        assert_eq!(r.headers().len(), 2);
        assert_eq!(
            build_response(Response {
                status: 7,
                headers: vec![],
                body: vec![]
            })
            .status(),
            500
        );
    }
}
