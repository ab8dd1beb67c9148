//! The lab of a GAP scenario: one HTTPS server per actor of the pack (annuaire, mirror AMCs).
//! Servers do not answer by themselves: each request is handed to the engine, which checks it
//! and decides the answer (by default the mirror's own, computed by the actor's handler).

use crate::net::server::{Handler, Request, Response, Server, TlsErrorHook};
use crate::net::tls::{self, ClientAuth, Identity};
use crate::pack::{Actor, Pack, ServerCert};
use crate::pki::Pki;
use crate::roc::population::Population;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A request a mirror received, waiting for the engine's answer.
pub struct Incoming {
    pub actor: String,
    /// The operation of the actor served at the request's path (None: unknown path).
    pub operation: Option<String>,
    pub request: Request,
    /// RFC 3339 time it arrived.
    pub received: String,
    pub at: Instant,
    pub reply: oneshot::Sender<Response>,
}

/// A TLS handshake a mirror saw fail.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    pub actor: String,
    pub error: String,
}

pub struct Lab {
    /// Actor -> base URL (`https://127.0.0.1:port`).
    pub urls: BTreeMap<String, String>,
    /// Actor -> the path its services sit under in this lab (`/s-1a2b3c4d` for a mirror AMC,
    /// new for every lab, so that a GAP can only find them through the annuaire; `` for the
    /// annuaire, whose address the GAP is given).
    pub prefixes: BTreeMap<String, String>,
    /// Actor -> the mirror's own answer to a request.
    pub mirrors: BTreeMap<String, Handler>,
    /// Actor -> the mirror AMC itself (for payment runs).
    pub amcs: BTreeMap<String, Arc<crate::mirror::amc::Amc>>,
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    pub tls_failures: mpsc::UnboundedReceiver<TlsFailure>,
    servers: Vec<Server>,
}

/// The identity a mirror presents.
pub fn server_identity(pki: &Pki, role: &str, cert: ServerCert) -> Identity {
    match cert {
        ServerCert::Lab if role == "annuaire" => pki.annuaire_server.clone(),
        ServerCert::Lab => pki.amc_server.clone(),
        ServerCert::Untrusted => pki.untrusted_server.clone(),
        ServerCert::WrongName => pki.wrong_name_server.clone(),
        ServerCert::Expired => pki.expired_server.clone(),
    }
}

impl Lab {
    /// Start one server per actor on its listen address (`127.0.0.1:0` when not given).
    pub async fn start(
        pack: &Pack,
        listen: &BTreeMap<String, String>,
        pki: &Pki,
        certs: &BTreeMap<String, ServerCert>,
        population: &Population,
    ) -> std::io::Result<Lab> {
        let (tx, incoming) = mpsc::unbounded_channel();
        let (tls_tx, tls_failures) = mpsc::unbounded_channel();
        let mut servers = vec![];
        let mut urls = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for actor in pack.actors.values() {
            let prefix = if actor.role == "amc" {
                format!("/s-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
            } else {
                String::new()
            };
            prefixes.insert(actor.name.clone(), prefix.clone());
            let identity = server_identity(
                pki,
                &actor.role,
                certs.get(&actor.name).copied().unwrap_or(ServerCert::Lab),
            );
            // Optional: the engine checks the client certificate and says so in a finding.
            let config = tls::server_config(&pki.ca_cert_pem, &identity, ClientAuth::Optional)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let addr = listen
                .get(&actor.name)
                .map(String::as_str)
                .unwrap_or("127.0.0.1:0");
            let hook: TlsErrorHook = {
                let tls_tx = tls_tx.clone();
                let name = actor.name.clone();
                Arc::new(move |_, error| {
                    let _ = tls_tx.send(TlsFailure {
                        actor: name.clone(),
                        error,
                    });
                })
            };
            let server = Server::start_with(
                addr,
                config,
                intercept(actor, &prefix, tx.clone()),
                Some(hook),
            )
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("actor {}: {e}", actor.name)))?;
            urls.insert(actor.name.clone(), server.url(""));
            servers.push(server);
        }
        let mut mirrors = BTreeMap::new();
        let mut amcs = BTreeMap::new();
        for actor in pack.actors.values() {
            let handler = if actor.role == "amc" {
                let amc = crate::mirror::amc::Amc::new(crate::mirror::amc::AmcConfig::new(
                    population.clone(),
                    actor.endpoint.as_deref().unwrap_or("A"),
                    Default::default(),
                ));
                amcs.insert(actor.name.clone(), amc.clone());
                amc.handler()
            } else {
                annuaire(pack, &urls, &prefixes, population)
            };
            mirrors.insert(actor.name.clone(), handler);
        }
        Ok(Lab {
            urls,
            prefixes,
            mirrors,
            amcs,
            incoming,
            tls_failures,
            servers,
        })
    }

    /// The mirror's own answer to `req` sent to `actor`.
    pub async fn default_answer(&self, actor: &str, req: Request) -> Response {
        match self.mirrors.get(actor) {
            Some(h) => h(req).await,
            None => Response {
                status: 404,
                headers: vec![],
                body: vec![],
            },
        }
    }

    /// Stop every mirror and return once their listening sockets and connections are closed,
    /// so that the next lab can listen on the same fixed addresses at once.
    pub async fn shutdown(self) {
        for s in self.servers {
            s.shutdown().await;
        }
    }
}

/// A handler that hands each request to the engine and waits for its answer.
fn intercept(actor: &Actor, prefix: &str, tx: mpsc::UnboundedSender<Incoming>) -> Handler {
    let actor = actor.clone();
    let prefix = prefix.to_string();
    Arc::new(move |request: Request| {
        let (reply, answer) = oneshot::channel();
        let incoming = Incoming {
            actor: actor.name.clone(),
            operation: actor
                .operation_at(&prefix, &request.path)
                .map(str::to_string),
            request,
            received: crate::net::client::now_rfc3339(),
            at: Instant::now(),
            reply,
        };
        let sent = tx.send(incoming).is_ok();
        Box::pin(async move {
            match (sent, answer.await) {
                (true, Ok(r)) => r,
                _ => Response {
                    status: 503,
                    headers: vec![],
                    body: b"the lab is shutting down".to_vec(),
                },
            }
        })
    })
}

/// The annuaire mirror, answering with the URLs of this lab's mirror AMCs.
fn annuaire(
    pack: &Pack,
    urls: &BTreeMap<String, String>,
    prefixes: &BTreeMap<String, String>,
    population: &Population,
) -> Handler {
    // Each AMC endpoint's address in this lab: its server and its path.
    let amc_urls: BTreeMap<String, String> = pack
        .actors
        .values()
        .filter(|a| a.role == "amc")
        .filter_map(|a| {
            let base = urls.get(&a.name)?;
            let prefix = prefixes.get(&a.name).map(String::as_str).unwrap_or("");
            Some((a.endpoint.clone()?, format!("{base}{prefix}")))
        })
        .collect();
    let services: Vec<String> = pack
        .actors
        .values()
        .find(|a| a.role == "amc")
        .map(|a| a.operations.keys().cloned().collect())
        .unwrap_or_default();
    crate::mirror::annuaire::handler(crate::mirror::annuaire::AnnuaireConfig {
        population: population.clone(),
        amc_urls,
        services,
        ns: crate::mirror::annuaire::NS.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::client;
    use std::path::Path;
    use std::time::Duration;

    fn mini() -> (Pack, Population) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gap-mini");
        let pack = crate::pack::load(&dir, &Default::default()).unwrap().pack;
        let text = std::fs::read_to_string(&pack.data_files["population"]).unwrap();
        (pack, Population::from_yaml(&text).unwrap())
    }

    /// A port no one listens on now (bound, then released).
    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// One exchange with the annuaire of `lab`, answered by the mirror itself.
    async fn exchange(lab: &mut Lab, pki: &Pki) -> crate::outcome::Exchange {
        let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
        let req = client::Request {
            url: format!("{}/annuaire", lab.urls["annuaire"]),
            headers: vec![("Content-Type".into(), "text/xml; charset=utf-8".into())],
            body: b"<x/>".to_vec(),
        };
        let timeouts = client::Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(10),
        };
        let send = client::post(&req, config, timeouts, ("gap", "annuaire", "search"));
        let answer = async {
            let inc = lab.incoming.recv().await.expect("a request");
            let resp = lab.default_answer(&inc.actor, inc.request.clone()).await;
            let _ = inc.reply.send(resp);
        };
        tokio::join!(send, answer).0
    }

    /// Scenarios on fixed ports run one after the other: once a lab is shut down, the next
    /// one listens on the same address at once, though a client still holds a connection
    /// to the first one and an answered connection may linger in TIME_WAIT.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fixed_port_is_free_again_as_soon_as_the_lab_is_shut_down() {
        let (pack, population) = mini();
        let pki = crate::pki::generate("750712184").unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let listen = BTreeMap::from([("annuaire".to_string(), addr.clone())]);
        let certs = BTreeMap::new();
        let mut lab = Lab::start(&pack, &listen, &pki, &certs, &population)
            .await
            .unwrap();
        assert_eq!(lab.urls["annuaire"], format!("https://{addr}"));
        let ex = exchange(&mut lab, &pki).await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        // A client that connected, completed its handshake and keeps the connection open.
        let config = tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let held = tokio_rustls::TlsConnector::from(config)
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .expect("handshake");
        for round in 0..3 {
            lab.shutdown().await;
            lab = Lab::start(&pack, &listen, &pki, &certs, &population)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            let ex = exchange(&mut lab, &pki).await;
            assert!(ex.error.is_none(), "round {round}: {:?}", ex.error);
        }
        lab.shutdown().await;
        drop(held);
    }
}
