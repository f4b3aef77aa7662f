//! An identity provider on 127.0.0.1: each path answers what the test
//! sets (a key set, an OpenID configuration, a redirect), with the headers
//! the test chooses, and counts its requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::http1::read_message;

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Reply {
        Reply { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: body.into() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn redirect(location: &str) -> Reply {
        Reply { status: 302, headers: vec![("location".into(), location.into())], body: String::new() }
    }
}

pub struct Idp {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
    latency: Arc<Mutex<std::time::Duration>>,
}

impl Idp {
    pub async fn start() -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let latency: Arc<Mutex<std::time::Duration>> = Arc::default();
        let (r, h, l) = (routes.clone(), hits.clone(), latency.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (routes, hits, latency) = (r.clone(), h.clone(), l.clone());
                tokio::spawn(async move {
                    let Some((head, _)) = read_message(&mut socket).await else { return };
                    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    hits.lock().unwrap().push(path.clone());
                    let delay = *latency.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
                        status: 404,
                        headers: Vec::new(),
                        body: "not found".into(),
                    });
                    let mut response = format!("HTTP/1.1 {} X\r\n", reply.status);
                    for (name, value) in &reply.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", reply.body.len()));
                    response.push_str(&reply.body);
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Idp { base: format!("http://127.0.0.1:{port}"), port, routes, hits, latency }
    }

    /// A provider that accepts connections, reads each request (counted),
    /// and never answers.
    pub async fn silent() -> Idp {
        let idp = Idp::start().await;
        idp.set_latency(std::time::Duration::from_secs(3600));
        idp
    }

    /// Every answer from now on comes `latency` after its request.
    pub fn set_latency(&self, latency: std::time::Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.into(), reply);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().iter().filter(|p| *p == path).count()
    }
}
