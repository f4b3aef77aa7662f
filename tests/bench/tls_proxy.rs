//! DynamoDB as the function meets it on AWS: behind TLS, a round trip
//! away. A TLS-terminating proxy on 127.0.0.1 in front of DynamoDB Local,
//! with a certificate made at start (trusted through `SSL_CERT_FILE`), that
//! charges every new connection a TCP and a TLS 1.3 handshake's round trip
//! and every request one more.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::aws_lc_rs, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::common::http1::{read_message, to_bytes};

pub struct TlsProxy {
    /// `https://127.0.0.1:<port>`
    pub endpoint: String,
    /// The CA that signed the proxy's certificate, PEM: the function's `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
}

impl TlsProxy {
    pub async fn start(upstream: &str, rtt: Duration) -> TlsProxy {
        let dir = private_dir();
        let (ca, der, key) = (dir.join("ca.pem"), dir.join("cert.der"), dir.join("key.der"));
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl").args(args).current_dir(&dir).status();
            assert!(status.is_ok_and(|s| s.success()), "openssl {args:?} failed (the bench needs the openssl CLI)");
        };
        // A CA, as SSL_CERT_FILE, and a server certificate it signs.
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &p256,
                &["-days", "1", "-subj", "/CN=bench CA", "-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
        );
        openssl(
            &[&["req"][..], &p256, &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "server.csr"]].concat(),
        );
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-outform",
            "DER",
            "-out",
            "cert.der",
        ]);
        openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der"]);
        let cert = CertificateDer::from(std::fs::read(der).unwrap());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(key).unwrap()));
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, acceptor.clone(), upstream.clone(), rtt));
            }
        });
        TlsProxy { endpoint, ca_file: ca }
    }
}

async fn serve(client: TcpStream, acceptor: TlsAcceptor, upstream: String, rtt: Duration) {
    let _ = client.set_nodelay(true);
    tokio::time::sleep(rtt).await; // TCP's handshake
    let Ok(mut client) = acceptor.accept(client).await else { return };
    tokio::time::sleep(rtt).await; // TLS 1.3's
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
