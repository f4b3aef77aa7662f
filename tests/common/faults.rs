//! A fault-injecting HTTP proxy between the function and DynamoDB Local:
//! it forwards requests (recording each), or for the chosen operation
//! answers with a throttle, a 500, silence, or a reset connection, once or
//! every time.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::calls::RecordedCall;
use super::http1::{header, read_message, to_bytes};

/// One request the proxy saw: the operation, and when it came and went.
#[derive(Clone, Debug)]
pub struct Call {
    pub operation: String,
    pub start: Instant,
    pub end: Instant,
}

/// Every request the proxy saw, in arrival order.
pub type Seen = Arc<Mutex<Vec<Call>>>;

/// How many sequential rounds `calls` took: calls that overlap in time
/// were made concurrently and count once.
pub fn rounds(calls: &[Call]) -> usize {
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.start);
    let mut rounds = 0;
    let mut round_end: Option<Instant> = None;
    for call in sorted {
        if round_end.is_none_or(|end| call.start > end) {
            rounds += 1;
            round_end = Some(call.end);
        } else {
            round_end = round_end.max(Some(call.end));
        }
    }
    rounds
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttling,
    ThroughputExceeded,
    ServerError,
    Stall,
    Reset,
    /// Forwards the request, so DynamoDB applies it, and never answers.
    LoseAnswer,
    /// Forwards the request, sends the answer's status line and headers
    /// and half its body, then closes the connection.
    CutAfterHeaders,
}

#[derive(Clone, Debug)]
struct Rule {
    fault: Fault,
    /// `GetItem`, `Query`, `DeleteItem`, ...
    operation: &'static str,
    /// `None`: every time.
    remaining: Option<usize>,
}

/// What the test sets, and what the proxy counts, shared with every
/// connection.
#[derive(Default)]
struct Controls {
    rule: Mutex<Option<Rule>>,
    injected: Mutex<usize>,
    latency: Mutex<Duration>,
}

pub struct FaultProxy {
    pub endpoint: String,
    controls: Arc<Controls>,
    pub seen: Seen,
}

impl FaultProxy {
    /// A proxy for the function: each call it forwards is recorded in
    /// `CALL_LOG`, for the IAM check.
    pub async fn start(upstream: &str) -> FaultProxy {
        Self::starting(upstream, true).await
    }

    /// A proxy for a tool that is not the function (`explain`): its calls
    /// are seen, not recorded for the function's policy.
    pub async fn for_a_tool(upstream: &str) -> FaultProxy {
        Self::starting(upstream, false).await
    }

    async fn starting(upstream: &str, recorded: bool) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let (controls, seen): (Arc<Controls>, Seen) = Default::default();
        let (c, s) = (controls.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), c.clone(), s.clone(), recorded));
            }
        });
        FaultProxy { endpoint, controls, seen }
    }

    pub fn once(&self, fault: Fault, operation: &'static str) {
        *self.controls.rule.lock().unwrap() = Some(Rule { fault, operation, remaining: Some(1) });
    }

    pub fn always(&self, fault: Fault, operation: &'static str) {
        *self.controls.rule.lock().unwrap() = Some(Rule { fault, operation, remaining: None });
    }

    /// Adds `latency` to every forwarded request, as a distant DynamoDB
    /// would: calls made concurrently then overlap for certain.
    pub fn set_latency(&self, latency: Duration) {
        *self.controls.latency.lock().unwrap() = latency;
    }

    /// How many requests got a fault instead of an answer.
    pub fn injected(&self) -> usize {
        *self.controls.injected.lock().unwrap()
    }
}

/// Serves one connection; `recorded`: whether its calls go to `CALL_LOG`.
async fn serve(mut client: TcpStream, upstream: String, controls: Arc<Controls>, seen: Seen, recorded: bool) {
    let mut upstream_conn: Option<TcpStream> = None;
    loop {
        let Some((head, body)) = read_message(&mut client).await else { return };
        let operation = header(&head, "x-amz-target").and_then(|t| t.split('.').nth(1).map(str::to_owned));
        if let Some(operation) = operation.as_deref().filter(|_| recorded) {
            record(operation, &body);
        }
        let start = Instant::now();
        let delay = *controls.latency.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let fault = {
            let mut rule = controls.rule.lock().unwrap();
            match rule.as_mut() {
                Some(r) if operation.as_deref() == Some(r.operation) && r.remaining != Some(0) => {
                    if let Some(n) = r.remaining.as_mut() {
                        *n -= 1;
                    }
                    *controls.injected.lock().unwrap() += 1;
                    Some(r.fault)
                }
                _ => None,
            }
        };
        match fault {
            None | Some(Fault::LoseAnswer) | Some(Fault::CutAfterHeaders) => {
                if upstream_conn.is_none() {
                    upstream_conn = TcpStream::connect(&upstream).await.ok();
                }
                let Some(up) = upstream_conn.as_mut() else { return };
                if up.write_all(&to_bytes(&head, &body)).await.is_err() {
                    return;
                }
                let Some((head, body)) = read_message(up).await else { return };
                if let Some(operation) = operation.clone() {
                    seen.lock().unwrap().push(Call { operation, start, end: Instant::now() });
                }
                if fault == Some(Fault::LoseAnswer) {
                    return hold_open(client).await;
                }
                if fault == Some(Fault::CutAfterHeaders) {
                    let _ = client.write_all(&to_bytes(&head, &body[..body.len() / 2])).await;
                    let _ = client.shutdown().await;
                    return;
                }
                if client.write_all(&to_bytes(&head, &body)).await.is_err() {
                    return;
                }
            }
            Some(Fault::Stall) => return hold_open(client).await,
            Some(Fault::Reset) => {
                let _ = client.set_zero_linger();
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

/// Keeps the connection open and never answers, until the client leaves.
async fn hold_open(mut client: TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = client.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}

/// Appends the call in `body` to `CALL_LOG`, if set.
fn record(operation: &str, body: &[u8]) {
    let Ok(path) = std::env::var("CALL_LOG") else { return };
    let Some(call) = RecordedCall::of(operation, body) else { return };
    let mut line = serde_json::to_string(&call).unwrap();
    line.push('\n');
    // One write per line, in append mode: lines of concurrent tests never mix.
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    file.write_all(line.as_bytes()).unwrap();
}
