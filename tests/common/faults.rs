//! A fault-injecting HTTP proxy between the function and DynamoDB Local:
//! it forwards requests, or for the chosen operation answers with a
//! throttle, a 500, silence, or a reset connection, once or every time.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttling,
    ThroughputExceeded,
    ServerError,
    Stall,
    Reset,
}

#[derive(Clone, Debug)]
struct Rule {
    fault: Fault,
    /// `GetItem`, `Query`, `DeleteItem`, ...
    operation: &'static str,
    /// `None`: every time.
    remaining: Option<usize>,
}

pub struct FaultProxy {
    pub endpoint: String,
    rule: Arc<Mutex<Option<Rule>>>,
    injected: Arc<Mutex<usize>>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let rule: Arc<Mutex<Option<Rule>>> = Arc::default();
        let injected: Arc<Mutex<usize>> = Arc::default();
        let (r, i) = (rule.clone(), injected.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), r.clone(), i.clone()));
            }
        });
        FaultProxy { endpoint, rule, injected }
    }

    pub fn once(&self, fault: Fault, operation: &'static str) {
        *self.rule.lock().unwrap() = Some(Rule { fault, operation, remaining: Some(1) });
    }

    pub fn always(&self, fault: Fault, operation: &'static str) {
        *self.rule.lock().unwrap() = Some(Rule { fault, operation, remaining: None });
    }

    pub fn clear(&self) {
        *self.rule.lock().unwrap() = None;
    }

    /// How many requests got a fault instead of an answer.
    pub fn injected(&self) -> usize {
        *self.injected.lock().unwrap()
    }
}

async fn serve(mut client: TcpStream, upstream: String, rule: Arc<Mutex<Option<Rule>>>, injected: Arc<Mutex<usize>>) {
    let mut upstream_conn: Option<TcpStream> = None;
    loop {
        let Some(request) = read_message(&mut client).await else { return };
        let operation = header(&request, "x-amz-target").and_then(|t| t.split('.').nth(1).map(str::to_owned));
        let fault = {
            let mut rule = rule.lock().unwrap();
            match rule.as_mut() {
                Some(r) if operation.as_deref() == Some(r.operation) && r.remaining != Some(0) => {
                    if let Some(n) = r.remaining.as_mut() {
                        *n -= 1;
                    }
                    *injected.lock().unwrap() += 1;
                    Some(r.fault)
                }
                _ => None,
            }
        };
        match fault {
            None => {
                if upstream_conn.is_none() {
                    upstream_conn = TcpStream::connect(&upstream).await.ok();
                }
                let Some(up) = upstream_conn.as_mut() else { return };
                if up.write_all(&request).await.is_err() {
                    return;
                }
                let Some(response) = read_message(up).await else { return };
                if client.write_all(&response).await.is_err() {
                    return;
                }
            }
            Some(Fault::Stall) => {
                // Hold the connection open and never answer.
                let mut sink = [0u8; 1024];
                while let Ok(n) = client.read(&mut sink).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
            Some(Fault::Reset) => {
                let _ = client.set_linger(Some(std::time::Duration::ZERO));
                return;
            }
            Some(error) => {
                let (status, kind) = match error {
                    Fault::Throttling => ("400 Bad Request", "ThrottlingException"),
                    Fault::ThroughputExceeded => ("400 Bad Request", "ProvisionedThroughputExceededException"),
                    _ => ("500 Internal Server Error", "InternalServerError"),
                };
                let body = format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected"}}"#);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: fault\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One HTTP/1.1 message with a `content-length` body, bytes as received.
async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let length: usize = header(&data[..head_end], "content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(data)
}

fn header(message: &[u8], name: &str) -> Option<String> {
    let head = std::str::from_utf8(message).ok().or_else(|| {
        let end = message.windows(4).position(|w| w == b"\r\n\r\n")?;
        std::str::from_utf8(&message[..end]).ok()
    })?;
    head.lines().take_while(|l| !l.is_empty()).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}
