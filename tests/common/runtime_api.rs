//! A small Lambda Runtime API on 127.0.0.1, and a function process bound
//! to it: the function's binary runs here as it runs on Lambda (the tests'
//! debug build; `make bench` runs the release build the same way).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Notify};

use super::http1::read_message;

/// Each invocation's deadline, as Lambda would set it for the template's timeout.
const TEMPLATE_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<(String, String)>>,
    ready: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    first_poll: Mutex<Option<Instant>>,
    next_id: AtomicU64,
    timeout: Mutex<Duration>,
    /// The function process Lambda would freeze between invocations.
    frozen: Mutex<Option<u32>>,
}

pub struct RuntimeApi {
    pub address: String,
    state: Arc<State>,
}

impl RuntimeApi {
    /// A Runtime API for a function with the template's timeout.
    pub async fn start() -> RuntimeApi {
        Self::with_timeout(TEMPLATE_TIMEOUT).await
    }

    /// A Runtime API whose invocations have `timeout` each.
    pub async fn with_timeout(timeout: Duration) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State { timeout: Mutex::new(timeout), ..State::default() });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, s.clone()));
            }
        });
        RuntimeApi { address, state }
    }

    /// Sends `event` to the function and returns what it answered.
    pub async fn invoke(&self, event: &Value) -> Value {
        let id = format!("00000000-0000-4000-8000-{:012}", self.state.next_id.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        self.state.waiting.lock().unwrap().insert(id.clone(), tx);
        self.state.queue.lock().unwrap().push_back((id, event.to_string()));
        self.state.ready.notify_one();
        tokio::time::timeout(Duration::from_secs(30), rx).await.expect("the function answers").expect("answered")
    }

    /// From now on, `function` is frozen as Lambda freezes it: stopped
    /// (SIGSTOP) as soon as it asks for an event none is waiting for, and
    /// continued (SIGCONT) when one is handed out.
    pub fn freeze_between_invocations(&self, function: &Function) {
        *self.state.frozen.lock().unwrap() = Some(function.pid());
    }

    /// When the function first asked for work: the end of its init.
    pub async fn wait_first_poll(&self, limit: Duration) -> Option<Instant> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(at) = *self.state.first_poll.lock().unwrap() {
                return Some(at);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }
}

async fn serve(mut socket: TcpStream, state: Arc<State>) {
    while let Some((head, body)) = read_message(&mut socket).await {
        let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let reply = if path.ends_with("/invocation/next") {
            state.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
            let frozen = *state.frozen.lock().unwrap();
            let mut stopped = false;
            let (id, event) = loop {
                if let Some(next) = state.queue.lock().unwrap().pop_front() {
                    break next;
                }
                if let (Some(pid), false) = (frozen, stopped) {
                    // SAFETY: a signal to the test's own child process.
                    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
                    stopped = true;
                }
                state.ready.notified().await;
            };
            if let (Some(pid), true) = (frozen, stopped) {
                // SAFETY: as above.
                unsafe { libc::kill(pid as i32, libc::SIGCONT) };
            }
            let deadline = super::now_ms() + state.timeout.lock().unwrap().as_millis() as u64;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:delete-token\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 content-length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            let answer = serde_json::from_slice(&body).unwrap_or(Value::Null);
            // An init error is in the function's own output, which the tests
            // read; an invocation's response or error goes to its caller.
            let invocation = path.split('/').rev().nth(1).filter(|_| !path.ends_with("/init/error"));
            if let Some(id) = invocation {
                let value = if path.ends_with("/error") { serde_json::json!({ "error": answer }) } else { answer };
                if let Some(tx) = state.waiting.lock().unwrap().remove(id) {
                    let _ = tx.send(value);
                }
            }
            let body = r#"{"status":"OK"}"#;
            format!(
                "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The `delete-token` binary Cargo built for these tests.
pub fn function_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_delete-token"))
}

/// A function process bound to a [`RuntimeApi`], its output collected.
pub struct Function {
    child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Function {
    pub fn spawn(binary: &Path, runtime_api: &RuntimeApi, env: &[(&str, String)]) -> Function {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "delete-token")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the function binary starts");
        let output: Arc<Mutex<Vec<String>>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>, Box::new(stderr)] {
            let out = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    out.lock().unwrap().push(line);
                }
            });
        }
        Function { child, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub async fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait()).await.ok()?.ok()?.code()
    }

    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lines = self.output.lock().unwrap().clone();
        lines
    }
}
