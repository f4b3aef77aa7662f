//! The network as the function meets it on AWS: DynamoDB and the identity
//! provider behind TLS, each a round trip away. Servers on 127.0.0.1 with
//! a certificate made at start (its CA trusted through `SSL_CERT_FILE`),
//! that charge every new connection a TCP and a TLS 1.3 handshake's round
//! trip and every request one more: a TLS-terminating proxy in front of
//! DynamoDB Local, and an identity provider serving fixed documents.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::aws_lc_rs, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::common::http1::{read_message, to_bytes};

/// A server certificate for 127.0.0.1 and the CA that signed it.
pub struct Tls {
    acceptor: TlsAcceptor,
    /// The CA, PEM: the function's `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
}

impl Tls {
    pub fn new() -> Tls {
        let dir = private_dir();
        let (ca, der, key) = (dir.join("ca.pem"), dir.join("cert.der"), dir.join("key.der"));
        // A CA, as SSL_CERT_FILE, and a server certificate it signs.
        let openssl = |args: &str, subject: Option<&str>| {
            let subject = subject.map(|s| ["-subj", s]).into_iter().flatten();
            let status = Command::new("openssl").args(args.split_whitespace()).args(subject).current_dir(&dir).status();
            assert!(status.is_ok_and(|s| s.success()), "openssl {args} failed (the bench needs the openssl CLI)");
        };
        let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(&format!("req -x509 {p256} -days 1 -keyout ca.key -out ca.pem"), Some("/CN=bench CA"));
        openssl(&format!("req {p256} -keyout key.pem -out server.csr"), Some("/CN=127.0.0.1"));
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
        let sign = "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext";
        openssl(&format!("{sign} -outform DER -out cert.der"), None);
        openssl("pkcs8 -topk8 -nocrypt -in key.pem -outform DER -out key.der", None);
        let cert = CertificateDer::from(std::fs::read(der).unwrap());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(key).unwrap()));
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        Tls { acceptor: TlsAcceptor::from(Arc::new(config)), ca_file: ca }
    }

    /// DynamoDB (at `upstream`) behind TLS, `rtt` away: its `https://` endpoint.
    pub async fn proxy(&self, upstream: &str, rtt: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        self.serve(listener, rtt, move |client| proxy(client, upstream.clone(), rtt));
        endpoint
    }

    /// An identity provider `rtt` away, answering each path with its JSON
    /// document (404 otherwise) and counting requests per path. `documents`
    /// are made from its base URL.
    pub async fn provider(
        &self,
        rtt: Duration,
        documents: impl FnOnce(&str) -> HashMap<String, String>,
    ) -> TlsProvider {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (documents, counted) = (Arc::new(documents(&base)), hits.clone());
        self.serve(listener, rtt, move |client| provide(client, documents.clone(), counted.clone(), rtt));
        TlsProvider { base, hits }
    }

    /// Accepts connections on `listener`, charging each its handshakes'
    /// round trips, and hands each to `serve`.
    fn serve<F, S>(&self, listener: TcpListener, rtt: Duration, serve: S)
    where
        S: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let acceptor = self.acceptor.clone();
        let serve = Arc::new(serve);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, serve) = (acceptor.clone(), serve.clone());
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    tokio::time::sleep(rtt).await; // TCP's handshake
                    let Ok(client) = acceptor.accept(client).await else { return };
                    tokio::time::sleep(rtt).await; // TLS 1.3's
                    serve(client).await;
                });
            }
        });
    }
}

/// An identity provider served by [`Tls::provider`].
pub struct TlsProvider {
    /// `https://127.0.0.1:<port>`
    pub base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl TlsProvider {
    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn provide(
    mut client: tokio_rustls::server::TlsStream<TcpStream>,
    documents: Arc<HashMap<String, String>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    rtt: Duration,
) {
    while let Some((head, _)) = read_message(&mut client).await {
        tokio::time::sleep(rtt).await; // the request's
        let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let (status, body) = match documents.get(&path) {
            Some(body) => ("200 OK", body.as_str()),
            None => ("404 Not Found", ""),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: max-age=3600\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        if client.write_all(response.as_bytes()).await.is_err() || client.flush().await.is_err() {
            return;
        }
    }
}

async fn proxy(mut client: tokio_rustls::server::TlsStream<TcpStream>, upstream: String, rtt: Duration) {
    let Ok(mut up) = TcpStream::connect(&upstream).await else { return };
    let _ = up.set_nodelay(true);
    while let Some((head, body)) = read_message(&mut client).await {
        tokio::time::sleep(rtt).await; // the request's
        if up.write_all(&to_bytes(&head, &body)).await.is_err() {
            return;
        }
        let Some((head, body)) = read_message(&mut up).await else { return };
        if client.write_all(&to_bytes(&head, &body)).await.is_err() || client.flush().await.is_err() {
            return;
        }
    }
}

/// A new folder only this user may enter, for the keys: created here, never
/// one that was already there (another user could have made it first).
fn private_dir() -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    for attempt in 0..100u32 {
        let dir = std::env::temp_dir().join(format!("netbird-bench-tls-{}-{nanos}-{attempt}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
    panic!("no fresh folder for the bench's TLS files")
}
