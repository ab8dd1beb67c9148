//! HTTPS server (hyper over tokio-rustls) handing each request, with the peer's certificate
//! facts, to a handler. (STUB: to be implemented.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Peer,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;

/// Accept connections on `listener` until the task is dropped or aborted.
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _tls: Arc<rustls::ServerConfig>,
    _handler: Handler,
) {
    todo!()
}
