//! End-to-end tests of the client against the server over loopback with the generated PKI.

use super::client::{self, Timeouts};
use super::server::{self, Handler, Server};
use super::tls::{self, ClientAuth};
use crate::outcome::{Exchange, TransportErrorKind};
use crate::pki::{self, Pki};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FINESS: &str = "750712184";

fn pki() -> Pki {
    pki::generate(FINESS).unwrap()
}

/// Echoes the body; tells the peer's CN in `X-Peer-CN` (`-` when none).
fn echo() -> Handler {
    Arc::new(|req: server::Request| {
        Box::pin(async move {
            server::Response {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "text/xml; charset=utf-8".into()),
                    (
                        "X-Peer-CN".into(),
                        req.peer.common_name.clone().unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "X-Peer-TLS".into(),
                        req.peer.tls_version.clone().unwrap_or_default(),
                    ),
                ],
                body: req.body,
            }
        })
    })
}

async fn start(pki: &Pki, identity: &tls::Identity, auth: ClientAuth) -> Server {
    let config = tls::server_config(&pki.ca_cert_pem, identity, auth).unwrap();
    Server::start("127.0.0.1:0", config, echo()).await.unwrap()
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
    }
}

async fn post_to(
    url: &str,
    config: Arc<rustls::ClientConfig>,
    body: &[u8],
    timeouts: Timeouts,
) -> Exchange {
    let req = client::Request {
        url: url.to_string(),
        headers: vec![
            ("Content-Type".into(), "text/xml; charset=utf-8".into()),
            ("SOAPAction".into(), "\"urn:IDB\"".into()),
        ],
        body: body.to_vec(),
    };
    client::post(&req, config, timeouts, ("establishment", "amc", "IDB")).await
}

fn expect_error(ex: &Exchange, kind: TransportErrorKind, needle: &str) {
    let err = ex
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected {kind:?} error, got {:?}", ex.response));
    eprintln!("{:?}: {}", err.kind, err.message);
    assert_eq!(err.kind, kind, "{}", err.message);
    assert!(
        err.message.contains(needle),
        "message {:?} should contain {needle:?}",
        err.message
    );
    assert!(ex.response.is_none());
}

#[tokio::test]
async fn mutual_tls_success_is_recorded() {
    let pki = pki();
    let server = start(&pki, &pki.amc_server, ClientAuth::Required).await;
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let body = "<soap:Envelope>é</soap:Envelope>";
    let ex = post_to(
        &server.url("/IDB?v=1"),
        config.clone(),
        body.as_bytes(),
        timeouts(),
    )
    .await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(
        (ex.from.as_str(), ex.to.as_str(), ex.operation.as_str()),
        ("establishment", "amc", "IDB")
    );
    assert_eq!(ex.request.start_line, "POST /IDB?v=1 HTTP/1.1");
    let names: Vec<&str> = ex.request.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["Host", "Content-Type", "SOAPAction", "Content-Length"]
    );
    assert_eq!(
        ex.request.header("host"),
        Some(format!("127.0.0.1:{}", server.addr.port()).as_str())
    );
    assert_eq!(
        ex.request.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(ex.request.body.as_deref(), Some(body));
    assert_eq!(ex.request.body_len, body.len());

    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.status, Some(200));
    assert_eq!(resp.start_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.body.as_deref(), Some(body));
    assert_eq!(resp.header("X-Peer-CN"), Some(FINESS));
    assert_eq!(resp.header("X-Peer-TLS"), Some("TLSv1.3"));
    assert_eq!(
        resp.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );

    let tls = ex.tls.as_ref().unwrap();
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(tls.peer_subject.as_deref(), Some("CN=amc.localhost"));
    assert_eq!(
        tls.local_subject.as_deref(),
        Some("CN=750712184, O=CH Modèle")
    );
    assert!(
        ex.started.ends_with('Z') && ex.started.len() == 24,
        "{}",
        ex.started
    );
    assert!(
        ex.latency_ms > 0.0 && ex.latency_ms <= ex.duration_ms,
        "{} {}",
        ex.latency_ms,
        ex.duration_ms
    );

    // By name too (localhost may resolve to ::1 first: the client tries every address).
    let url = format!("https://localhost:{}/IDB", server.addr.port());
    let ex = post_to(&url, config.clone(), &[0xff, 0x00, 0x80], timeouts()).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.request.body_base64.as_deref(), Some("/wCA"));
    assert_eq!(ex.request.body, None);
    let resp = ex.response.unwrap();
    assert_eq!(resp.body_base64.as_deref(), Some("/wCA"));
    assert_eq!(resp.body_len, 3);

    // post_with overrides the recorded local subject.
    let req = client::Request {
        url: server.url("/"),
        headers: vec![],
        body: vec![],
    };
    let ex = client::post_with(
        &req,
        config,
        timeouts(),
        ("a", "b", "c"),
        Some("CN=x".into()),
    )
    .await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.tls.unwrap().local_subject.as_deref(), Some("CN=x"));
    assert_eq!(ex.response.unwrap().body.as_deref(), Some(""));
    server.shutdown().await;
}

#[tokio::test]
async fn refused_client_certificates_are_tls_errors() {
    let pki = pki();
    let server = start(&pki, &pki.amc_server, ClientAuth::Required).await;
    let url = server.url("/IDB");

    // (b) no client certificate.
    let config = tls::client_config(&pki.ca_cert_pem, None).unwrap();
    let ex = post_to(&url, config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Tls, "CertificateRequired");
    assert_eq!(ex.tls.as_ref().and_then(|t| t.local_subject.clone()), None);

    // (c) client certificate from the untrusted CA.
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.untrusted_client)).unwrap();
    let ex = post_to(&url, config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Tls, "peer sent TLS alert");
    assert_eq!(
        ex.tls.as_ref().and_then(|t| t.local_subject.as_deref()),
        Some("CN=750712184")
    );

    // Expired client certificate.
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.expired_client)).unwrap();
    let ex = post_to(&url, config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Tls, "peer sent TLS alert");
}

#[tokio::test]
async fn refused_server_certificates_are_tls_errors() {
    let pki = pki();
    let client = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();

    // (d) the client trusts only the untrusted CA.
    let server = start(&pki, &pki.amc_server, ClientAuth::Required).await;
    let config = tls::client_config(&pki.untrusted_ca_cert_pem, Some(&pki.client)).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::PeerCertificate, "UnknownIssuer");
    assert!(
        ex.error
            .unwrap()
            .message
            .starts_with("the peer's certificate was refused")
    );

    // Server certificate from the untrusted CA.
    let server = start(&pki, &pki.untrusted_server, ClientAuth::Required).await;
    let ex = post_to(&server.url("/"), client.clone(), b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::PeerCertificate, "UnknownIssuer");

    // (e) wrong name, by IP and by name.
    let server = start(&pki, &pki.wrong_name_server, ClientAuth::Required).await;
    let ex = post_to(&server.url("/"), client.clone(), b"x", timeouts()).await;
    expect_error(
        &ex,
        TransportErrorKind::PeerCertificate,
        "not valid for name",
    );
    let url = format!("https://localhost:{}/", server.addr.port());
    let ex = post_to(&url, client.clone(), b"x", timeouts()).await;
    expect_error(
        &ex,
        TransportErrorKind::PeerCertificate,
        "not valid for name",
    );

    // (f) expired server certificate.
    let server = start(&pki, &pki.expired_server, ClientAuth::Required).await;
    let ex = post_to(&server.url("/"), client.clone(), b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::PeerCertificate, "expired");

    // The insecure client accepts all of them.
    let insecure = tls::client_config_insecure(Some(&pki.client)).unwrap();
    let ex = post_to(&server.url("/"), insecure, b"ok", timeouts()).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(
        ex.tls.unwrap().peer_subject.as_deref(),
        Some("CN=localhost")
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let pki = pki();
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts TCP, never answers (keeps the sockets open).
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_millis(300),
    };
    let t = Instant::now();
    let ex = post_to(&format!("https://{addr}/IDB"), config, b"x", timeouts).await;
    let elapsed = t.elapsed();
    expect_error(&ex, TransportErrorKind::Timeout, "300 ms");
    assert!(ex.error.as_ref().unwrap().message.contains("TLS handshake"));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(ex.duration_ms >= 300.0);
    holder.abort();
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let pki = pki();
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let ex = post_to(&format!("https://{addr}/IDB"), config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Connect, &addr.to_string());
    assert!(ex.tls.is_none());
}

#[tokio::test]
async fn accept_any_and_optional_client_auth() {
    let pki = pki();

    // (i) AcceptAny takes the untrusted client and the handler sees its CN.
    let server = start(&pki, &pki.amc_server, ClientAuth::AcceptAny).await;
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.untrusted_client)).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.response.unwrap().header("x-peer-cn"), Some(FINESS));
    // ...but a certificate is still required.
    let config = tls::client_config(&pki.ca_cert_pem, None).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Tls, "peer sent TLS alert");

    // (j) Optional takes a client without certificate: no CN.
    let server = start(&pki, &pki.amc_server, ClientAuth::Optional).await;
    let config = tls::client_config(&pki.ca_cert_pem, None).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.response.unwrap().header("x-peer-cn"), Some("-"));
    // ...but still refuses an untrusted one.
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.untrusted_client)).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Tls, "peer sent TLS alert");

    // None: no certificate requested, so none presented even when configured.
    let server = start(&pki, &pki.amc_server, ClientAuth::None).await;
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let ex = post_to(&server.url("/"), config, b"x", timeouts()).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.response.unwrap().header("x-peer-cn"), Some("-"));
    assert_eq!(ex.tls.unwrap().local_subject, None);
}

#[tokio::test]
async fn server_closing_without_answer_is_a_protocol_error() {
    let pki = pki();
    let config =
        tls::server_config(&pki.ca_cert_pem, &pki.amc_server, ClientAuth::Required).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Completes the handshake, reads a little, then closes without answering.
    let task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(stream).await.unwrap();
        let mut buf = [0u8; 16];
        let _ = tls.read(&mut buf).await;
        let _ = tls.shutdown().await;
    });
    let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let ex = post_to(&format!("https://{addr}/IDB"), config, b"x", timeouts()).await;
    expect_error(&ex, TransportErrorKind::Protocol, "");
    assert!(ex.tls.as_ref().unwrap().version.is_some());
    task.abort();
}
