//! HTTPS client that records the exchange as sent and received. (STUB: to be implemented.)

use crate::outcome::Exchange;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    /// `https://host:port/path`.
    pub url: String,
    /// Headers sent as given (Host and Content-Length are added).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// For the whole exchange after connecting (handshake, request, response).
    pub request: Duration,
}

/// POST `req` over a fresh TLS connection (no pooling: every exchange is its own evidence).
/// Never fails: transport problems are recorded in `Exchange::error`.
/// `from`/`to`/`operation` are copied into the exchange.
pub async fn post(
    _req: &Request,
    _tls: Arc<rustls::ClientConfig>,
    _timeouts: Timeouts,
    _labels: (&str, &str, &str),
) -> Exchange {
    todo!()
}
