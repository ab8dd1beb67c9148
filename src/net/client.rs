//! HTTPS client that records the exchange as sent and received.
//!
//! One fresh TCP + TLS connection per exchange (no pooling, no TLS session resumption):
//! every exchange is its own evidence. Transport failures are never returned as errors; they
//! are classified into [`TransportError`]s in the recorded [`Exchange`].

use crate::net::tls::{subject_of, version_name};
use crate::outcome::{Exchange, HttpMessage, TlsInfo, TransportError, TransportErrorKind};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

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
    req: &Request,
    tls: Arc<rustls::ClientConfig>,
    timeouts: Timeouts,
    labels: (&str, &str, &str),
) -> Exchange {
    post_with(req, tls, timeouts, labels, None).await
}

/// [`post`], with the subject recorded as `tls.local_subject` forced to `local_subject`.
/// With `None`, the subject of the certificate actually presented during the handshake is
/// recorded (none when the server did not ask for one or the configuration has none).
pub async fn post_with(
    req: &Request,
    tls: Arc<rustls::ClientConfig>,
    timeouts: Timeouts,
    labels: (&str, &str, &str),
    local_subject: Option<String>,
) -> Exchange {
    let started = now_rfc3339();
    let t0 = Instant::now();
    let target = parse_url(&req.url);

    // The request as it will be sent: Host first, the given headers in order, then
    // Content-Length (unless the caller gave their own Host or Content-Length).
    let mut headers = Vec::with_capacity(req.headers.len() + 2);
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if let (Ok(t), false) = (&target, has("host")) {
        headers.push(("Host".to_string(), t.authority.clone()));
    }
    headers.extend(req.headers.iter().cloned());
    if !has("content-length") {
        headers.push(("Content-Length".to_string(), req.body.len().to_string()));
    }
    let request_target = match &target {
        Ok(t) => t.path.clone(),
        Err(_) => req.url.clone(),
    };
    let mut exchange = Exchange {
        from: labels.0.to_string(),
        to: labels.1.to_string(),
        operation: labels.2.to_string(),
        url: req.url.clone(),
        request: message(
            format!("POST {request_target} HTTP/1.1"),
            None,
            headers,
            &req.body,
        ),
        started,
        ..Exchange::default()
    };

    let target = match target {
        Ok(t) => t,
        Err(message) => {
            exchange.error = Some(TransportError {
                kind: TransportErrorKind::Connect,
                message: format!("invalid URL '{}': {message}", req.url),
            });
            return exchange;
        }
    };

    let shared = Shared::default();
    let result = exchange_over_tls(
        &target,
        &exchange.request,
        &req.body,
        tls,
        timeouts,
        &shared,
        t0,
    )
    .await;
    let presented = shared.presented.lock().ok().and_then(|p| p.clone());
    let local_subject = local_subject
        .or_else(|| presented.and_then(|k| k.cert.first().and_then(|c| subject_of(c))));
    let tls_info = shared.tls.lock().ok().and_then(|t| t.clone());
    exchange.tls = match (tls_info, &local_subject) {
        (Some(mut info), _) => {
            info.local_subject = local_subject;
            Some(info)
        }
        (None, Some(_)) => Some(TlsInfo {
            local_subject,
            ..TlsInfo::default()
        }),
        (None, None) => None,
    };
    let end = Instant::now();
    exchange.duration_ms = ms(end - t0);
    match result {
        Ok(done) => {
            exchange.duration_ms = ms(done.last_byte - t0);
            exchange.latency_ms = ms(done.last_byte - done.sent);
            exchange.response = Some(done.response);
        }
        Err(error) => {
            if let Ok(Some(sent)) = shared.sent.lock().map(|s| *s) {
                exchange.latency_ms = ms(end - sent);
            }
            exchange.error = Some(error);
        }
    }
    exchange
}

/// What the connection reveals while it runs, kept even when it fails or times out.
#[derive(Default)]
struct Shared {
    phase: AtomicU8,
    tls: Mutex<Option<TlsInfo>>,
    sent: Mutex<Option<Instant>>,
    presented: Arc<Mutex<Option<Arc<CertifiedKey>>>>,
    /// Response head (`HTTP/1.1 200 OK`) once received.
    head: Mutex<Option<String>>,
}

const PHASE_HANDSHAKE: u8 = 0;
const PHASE_WAITING: u8 = 1;
const PHASE_BODY: u8 = 2;

struct Done {
    response: HttpMessage,
    sent: Instant,
    last_byte: Instant,
}

async fn exchange_over_tls(
    target: &Target,
    request: &HttpMessage,
    body: &[u8],
    tls: Arc<rustls::ClientConfig>,
    timeouts: Timeouts,
    shared: &Shared,
    t0: Instant,
) -> Result<Done, TransportError> {
    let tcp = match tokio::time::timeout(timeouts.connect, connect_tcp(target)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(message)) => return Err(error(TransportErrorKind::Connect, message)),
        Err(_) => {
            return Err(error(
                TransportErrorKind::Connect,
                format!(
                    "connect timeout: no TCP connection to {}:{} within {} ms",
                    target.host,
                    target.port,
                    timeouts.connect.as_millis()
                ),
            ));
        }
    };
    let _ = tcp.set_nodelay(true);

    // Our own copy of the configuration: records the certificate presented, no resumption.
    let mut config = (*tls).clone();
    config.client_auth_cert_resolver = Arc::new(RecordingResolver {
        inner: tls.client_auth_cert_resolver.clone(),
        presented: shared.presented.clone(),
    });
    config.resumption = rustls::client::Resumption::disabled();
    let server_name = match target.ip {
        Some(ip) => ServerName::IpAddress(ip.into()),
        None => ServerName::try_from(target.host.clone()).map_err(|e| {
            error(
                TransportErrorKind::Tls,
                format!("'{}' cannot be used as a TLS server name: {e}", target.host),
            )
        })?,
    };
    let http_request = build_request(target, request, body)?;

    let budget = timeouts.request;
    let run = exchange_on(tcp, Arc::new(config), server_name, http_request, shared);
    match tokio::time::timeout(budget, run).await {
        Ok(result) => result,
        Err(_) => {
            let during = match shared.phase.load(Ordering::SeqCst) {
                PHASE_HANDSHAKE => "still in the TLS handshake".to_string(),
                PHASE_WAITING => "waiting for the response".to_string(),
                _ => format!(
                    "reading the response body (head received: {})",
                    shared
                        .head
                        .lock()
                        .ok()
                        .and_then(|h| h.clone())
                        .unwrap_or_default()
                ),
            };
            Err(error(
                TransportErrorKind::Timeout,
                format!(
                    "no complete response within {} ms, {during} ({} ms after start)",
                    budget.as_millis(),
                    t0.elapsed().as_millis()
                ),
            ))
        }
    }
}

async fn exchange_on(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    http_request: http::Request<Full<Bytes>>,
    shared: &Shared,
) -> Result<Done, TransportError> {
    shared.phase.store(PHASE_HANDSHAKE, Ordering::SeqCst);
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| classify(&e, true))?;
    {
        let session = stream.get_ref().1;
        let info = TlsInfo {
            version: session.protocol_version().map(version_name),
            peer_subject: session
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| subject_of(c)),
            local_subject: None,
        };
        if let Ok(mut tls) = shared.tls.lock() {
            *tls = Some(info);
        }
    }

    shared.phase.store(PHASE_WAITING, Ordering::SeqCst);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| classify(&e, false))?;
    let sent = Instant::now();
    if let Ok(mut s) = shared.sent.lock() {
        *s = Some(sent);
    }
    let request = async move {
        let response = sender.send_request(http_request).await?;
        drop(sender);
        let (parts, body) = response.into_parts();
        let head = start_line(&parts);
        if let Ok(mut h) = shared.head.lock() {
            *h = Some(head.clone());
        }
        shared.phase.store(PHASE_BODY, Ordering::SeqCst);
        let body = body.collect().await?.to_bytes();
        let last_byte = Instant::now();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok::<_, hyper::Error>(Done {
            response: message(head, Some(parts.status.as_u16()), headers, &body),
            sent,
            last_byte,
        })
    };
    tokio::pin!(conn);
    tokio::pin!(request);
    let mut conn_result = None;
    let result = tokio::select! {
        biased;
        r = &mut request => Some(r),
        c = &mut conn => {
            conn_result = Some(c);
            // The request learns of the connection's end; do not wait long if it does not.
            tokio::time::timeout(Duration::from_secs(1), &mut request).await.ok()
        }
    };
    match result {
        Some(Ok(done)) => {
            // Close politely (TLS close_notify); the measurements are already taken.
            if conn_result.is_none() {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
            }
            Ok(done)
        }
        Some(Err(request_error)) => {
            let conn_error = match conn_result {
                Some(result) => result.err(),
                None => match tokio::time::timeout(Duration::from_millis(200), conn).await {
                    Ok(result) => result.err(),
                    Err(_) => None,
                },
            };
            // A TLS alert seen by the connection is the most precise cause.
            match conn_error {
                Some(conn_error)
                    if find_rustls(&conn_error).is_some()
                        && find_rustls(&request_error).is_none() =>
                {
                    Err(classify(&conn_error, false))
                }
                _ => Err(classify(&request_error, false)),
            }
        }
        None => Err(match conn_result {
            Some(Err(conn_error)) => classify(&conn_error, false),
            _ => error(
                TransportErrorKind::Protocol,
                "connection closed by the server without a response",
            ),
        }),
    }
}

fn build_request(
    target: &Target,
    request: &HttpMessage,
    body: &[u8],
) -> Result<http::Request<Full<Bytes>>, TransportError> {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(target.path.as_str());
    for (name, value) in &request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            error(
                TransportErrorKind::Protocol,
                format!("invalid request header name '{name}': {e}"),
            )
        })?;
        let value = http::HeaderValue::from_str(value).map_err(|e| {
            error(
                TransportErrorKind::Protocol,
                format!("invalid value for request header '{name}': {e}"),
            )
        })?;
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| {
            error(
                TransportErrorKind::Protocol,
                format!("invalid request: {e}"),
            )
        })
}

/// Resolve (names) and connect, trying every address in turn.
async fn connect_tcp(target: &Target) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = match target.ip {
        Some(ip) => vec![SocketAddr::new(ip, target.port)],
        None => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot resolve host '{}': {e}", target.host))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("host '{}' resolves to no address", target.host));
    }
    let mut failures = Vec::new();
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    Err(format!("cannot connect to {}", failures.join("; ")))
}

/// Records the certificate the client presents, if the server asks for one.
#[derive(Debug)]
struct RecordingResolver {
    inner: Arc<dyn ResolvesClientCert>,
    presented: Arc<Mutex<Option<Arc<CertifiedKey>>>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let key = self.inner.resolve(root_hint_subjects, sigschemes);
        if let Ok(mut presented) = self.presented.lock() {
            presented.clone_from(&key);
        }
        key
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

fn error(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
    TransportError {
        kind,
        message: message.into(),
    }
}

/// The rustls error somewhere in an error's source chain (possibly inside an `io::Error`).
fn find_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        current = e.source();
    }
    None
}

/// `a: b: c` from an error and its sources.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn classify(err: &(dyn StdError + 'static), handshake: bool) -> TransportError {
    match find_rustls(err) {
        Some(e @ rustls::Error::InvalidCertificate(_)) => error(
            TransportErrorKind::PeerCertificate,
            format!("the peer's certificate was refused: {e}"),
        ),
        Some(rustls::Error::AlertReceived(alert)) if handshake => error(
            TransportErrorKind::Tls,
            format!("TLS handshake failed: peer sent TLS alert {alert:?}"),
        ),
        Some(rustls::Error::AlertReceived(alert)) => error(
            TransportErrorKind::Tls,
            format!(
                "peer sent TLS alert {alert:?} after the handshake (with TLS 1.3, how a server \
                 rejects the client certificate)"
            ),
        ),
        Some(e) if handshake => error(
            TransportErrorKind::Tls,
            format!("TLS handshake failed: {e}"),
        ),
        Some(e) => error(TransportErrorKind::Tls, format!("TLS error: {e}")),
        None if handshake => error(
            TransportErrorKind::Tls,
            format!("TLS handshake failed: {}", chain_text(err)),
        ),
        None => error(
            TransportErrorKind::Protocol,
            format!("HTTP exchange failed: {}", chain_text(err)),
        ),
    }
}

fn start_line(parts: &http::response::Parts) -> String {
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| parts.status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    let line = format!("{:?} {}", parts.version, parts.status.as_u16());
    if reason.is_empty() {
        line
    } else {
        format!("{line} {reason}")
    }
}

fn message(
    start_line: String,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> HttpMessage {
    let (text, b64) = match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_string()), None),
        Err(_) => (None, Some(base64(body))),
    };
    HttpMessage {
        start_line,
        status,
        headers,
        body: text,
        body_base64: b64,
        body_len: body.len(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// RFC 3339, UTC, milliseconds: `2026-11-23T13:14:17.123Z`.
pub fn now_rfc3339() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// Standard base64 (RFC 4648, with padding).
/// Decode standard base64 (as written by [`base64`]); invalid characters are skipped.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (d << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The parts of an `https://` URL the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// Host without brackets.
    host: String,
    ip: Option<IpAddr>,
    port: u16,
    /// `host[:port]` as written in the URL (the Host header).
    authority: String,
    /// Path and query (origin form), `/` at least.
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let url = url.trim();
    let scheme_end = url
        .find("://")
        .ok_or_else(|| "expected https://host[:port]/path".to_string())?;
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("scheme '{scheme}' is not supported, only https"));
    }
    let rest = &url[scheme_end + 3..];
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    http::uri::PathAndQuery::try_from(path.as_str())
        .map_err(|e| format!("invalid path '{path}': {e}"))?;
    if authority.contains('@') {
        return Err("user information in the URL is not supported".to_string());
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "unterminated IPv6 literal".to_string())?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected '{p}' after IPv6 literal"))?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err("IPv6 literal hosts must be written in brackets".to_string());
            }
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port '{p}'")),
            Ok(p) => p,
        },
    };
    let ip = if authority.starts_with('[') {
        Some(IpAddr::V6(
            host.parse()
                .map_err(|_| format!("invalid IPv6 address '{host}'"))?,
        ))
    } else {
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    };
    Ok(Target {
        host: host.to_string(),
        ip,
        port,
        authority: authority.to_string(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10binary"] {
            assert_eq!(base64_decode(&base64(data)), data);
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn parses_urls() {
        let t = parse_url("https://localhost:8443/IDB?x=1#frag").unwrap();
        assert_eq!(
            t,
            Target {
                host: "localhost".into(),
                ip: None,
                port: 8443,
                authority: "localhost:8443".into(),
                path: "/IDB?x=1".into(),
            }
        );
        let t = parse_url("https://127.0.0.1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
        assert_eq!(t.ip, Some("127.0.0.1".parse().unwrap()));
        let t = parse_url("HTTPS://[::1]:9000?q").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.ip, Some("::1".parse().unwrap()));
        assert_eq!((t.port, t.path.as_str()), (9000, "/?q"));
        assert_eq!(t.authority, "[::1]:9000");
        assert_eq!(parse_url("https://[::1]/a").unwrap().port, 443);
        for bad in [
            "http://localhost/",
            "localhost/x",
            "https:///x",
            "https://h:0/",
            "https://h:99999/",
            "https://h:x/",
            "https://::1/",
            "https://[::1/",
            "https://[nope]/",
            "https://u@h/",
            "https://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_millis_utc() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with('Z'));
        time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn non_utf8_bodies_are_base64() {
        let m = message("x".into(), None, vec![], &[0xff, 0x00]);
        assert_eq!(m.body, None);
        assert_eq!(m.body_base64.as_deref(), Some("/wA="));
        assert_eq!(m.body_len, 2);
        let m = message("x".into(), None, vec![], "é".as_bytes());
        assert_eq!(m.body.as_deref(), Some("é"));
    }

    #[test]
    fn classifies_alerts_in_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let e = classify(&io, false);
        assert_eq!(e.kind, TransportErrorKind::Tls);
        assert!(
            e.message
                .contains("peer sent TLS alert CertificateRequired"),
            "{}",
            e.message
        );
        let plain = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        assert_eq!(classify(&plain, false).kind, TransportErrorKind::Protocol);
        assert_eq!(classify(&plain, true).kind, TransportErrorKind::Tls);
    }

    #[test]
    fn post_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let pki = crate::pki::generate("750712184").unwrap();
        let tls = crate::net::tls::client_config(&pki.ca_cert_pem, None).unwrap();
        let req = Request {
            url: "https://localhost/".into(),
            headers: vec![],
            body: vec![],
        };
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
        };
        assert_send(&post(&req, tls, timeouts, ("a", "b", "c")));
    }

    #[tokio::test]
    async fn invalid_url_is_recorded_not_returned() {
        let pki = crate::pki::generate("750712184").unwrap();
        let tls = crate::net::tls::client_config(&pki.ca_cert_pem, None).unwrap();
        let req = Request {
            url: "http://localhost/IDB".into(),
            headers: vec![],
            body: b"x".to_vec(),
        };
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
        };
        let ex = post(&req, tls, timeouts, ("a", "b", "c")).await;
        let err = ex.error.unwrap();
        assert_eq!(err.kind, TransportErrorKind::Connect);
        assert!(err.message.contains("only https"), "{}", err.message);
        assert_eq!(ex.request.start_line, "POST http://localhost/IDB HTTP/1.1");
        assert_eq!((ex.from.as_str(), ex.operation.as_str()), ("a", "c"));
    }
}
