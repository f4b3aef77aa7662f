//! End to end over real HTTP: the function served by `cargo lambda watch`
//! (as `make run` serves it), DynamoDB Local behind it, the table checked.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// Stops `cargo lambda watch` and the function it started (its own process group).
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // killpg directly: Debian 12's procps `kill -TERM -<pgid>` signals -1,
        // that is every process the user may signal, CI's runner included.
        if let Some(pgid) = self.0.id().and_then(|pid| libc::pid_t::try_from(pid).ok()).filter(|&pgid| pgid > 1) {
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe { libc::killpg(pgid, libc::SIGTERM) };
        }
    }
}

async fn send(http: &reqwest::Client, base: &str, path: &str, auth: Option<&str>) -> (u16, Value, String) {
    let mut request = http.delete(format!("{base}{path}"));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    (status, body, content_type)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_function_under_cargo_lambda_watch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo_lambda = root.join(".venv/bin/cargo-lambda");
    assert!(cargo_lambda.exists(), "cargo-lambda is not installed: run `make setup`");

    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    stack.user("a", ACCOUNT, "admin").await;
    stack.user("u", ACCOUNT, "user").await;
    stack.service_user("s", ACCOUNT, "ci-bot").await;
    stack.live_token("o", "o-t").await;
    let admin_pat = stack.live_token("a", "a-login").await;
    stack.live_token("s", "s-t").await;
    stack.live_token("u", "u-t").await;

    let env_file = std::env::temp_dir().join(format!("delete-token-e2e-{}.env", std::process::id()));
    let mut env = stack.function_env(&stack.dynamodb);
    env.iter_mut().filter(|(name, _)| *name == "AUTH_JWKS").for_each(|(_, json)| *json = format!("'{json}'")); // quoted
    let aws = [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")];
    env.extend(aws.map(|(name, value)| (name, value.to_owned())));
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&cargo_lambda)
        .args([
            "lambda",
            "watch",
            "--disable-cors",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .arg("--env-file")
        .arg(&env_file)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("cargo lambda watch starts");
    let _watch = Watch(child);

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    // The first request waits for cargo to build the function.
    let started = Instant::now();
    let first = loop {
        match http.delete(format!("{base}/api/users/o/tokens/o-t")).send().await {
            Ok(response) => break response,
            Err(_) if started.elapsed() < Duration::from_secs(600) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(err) => panic!("cargo lambda watch never answered: {err}"),
        }
    };
    assert_eq!(first.status().as_u16(), 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&first.bytes().await.unwrap()).unwrap(),
        json!({"message": "no valid authentication provided", "code": 401})
    );

    let jwt = format!("Bearer {}", stack.keys.jwt("o"));
    let pat = format!("Token {admin_pat}");
    let user_jwt = format!("Bearer {}", stack.keys.jwt("u"));
    let cases = [
        ("/api/users/o/tokens/o-t", Some(jwt.as_str()), 200, json!({})),
        ("/api/users/s/tokens/s-t", Some(pat.as_str()), 200, json!({})),
        ("/api/users/u/tokens/u-t", Some(user_jwt.as_str()), 403, json!({"message": "permission denied", "code": 403})),
        ("/api/users/o/tokens/o-t", Some(jwt.as_str()), 404, json!({"message": "pat: o-t not found", "code": 404})),
        ("/api/users/o/tokens/x", Some("Token nbp_nope"), 401, json!({"message": "token invalid", "code": 401})),
    ];
    for (path, auth, status, body) in cases {
        let got = send(&http, &base, path, auth).await;
        assert_eq!((got.0, got.1), (status, body), "{path}");
        assert_eq!(got.2, "application/json", "{path}");
    }
    assert_eq!(stack.tokens().await, vec![("a".into(), "a-login".into()), ("u".into(), "u-t".into())]);

    // `make smoke` against this stack: every check passes and nothing is deleted.
    let smoke_with_input = |vars: &[(&str, String)], input: &str| {
        use std::io::Write;
        let mut command = std::process::Command::new(root.join("scripts/smoke"));
        command.env_remove("TOKEN").env_remove("USER_ID").envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("the smoke script runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let smoke = |vars: &[(&str, String)]| smoke_with_input(vars, "");
    let (ok, lines) = smoke(&[("URL", base.clone()), ("TOKEN", stack.keys.jwt("a"))]);
    assert!(ok, "{lines}");
    assert_eq!(lines.lines().filter(|l| l.starts_with("ok ")).count(), 4, "{lines}");
    // The token on standard input: the way that keeps it off every command line.
    let (ok, lines) = smoke_with_input(&[("URL", format!("{base}/")), ("USER_ID", "a".into())], &admin_pat);
    assert!(ok, "{lines}");
    assert!(lines.contains("404 pat: smoke-"), "{lines}");
    assert!(!lines.contains(&admin_pat), "the token is never printed");
    assert_eq!(stack.tokens().await, vec![("a".into(), "a-login".into()), ("u".into(), "u-t".into())]);
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (ok, lines) = smoke(&[("URL", format!("http://{nowhere}"))]);
    assert!(!ok, "{lines}");
    assert_eq!(lines.lines().filter(|l| l.starts_with("FAIL ")).count(), 3, "{lines}");

    // Schemathesis, from docs/openapi.yaml: ids, headers and methods it
    // generates, with a valid PAT (from the environment) and without
    // credentials; its checks and ours (tests/api/hooks.py) all pass, and
    // nothing of the table changes.
    stack.user("st-owner", ACCOUNT, "owner").await;
    let st_pat = stack.live_token("st-owner", "st-login").await;
    let before = stack.tokens().await;
    let work = std::env::temp_dir().join(format!("schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    // Both at once; no stateful phase: one operation has nothing to chain.
    let runs = [("with-pat", st_pat.as_str()), ("without-credentials", "")].map(|(config, pat)| {
        let run = Command::new(root.join(".venv/bin/schemathesis"))
            .arg("--config-file")
            .arg(root.join("tests/api").join(format!("{config}.toml")))
            .arg("run")
            .arg(root.join("docs/openapi.yaml"))
            .args(["--url", &base, "--phases", "examples,coverage,fuzzing", "--checks", "all"])
            .args(["--exclude-checks", "positive_data_acceptance"])
            .env("SCHEMATHESIS_HOOKS", root.join("tests/api/hooks.py"))
            .env("SCHEMATHESIS_PAT", pat)
            .env("NO_COLOR", "1")
            .current_dir(&work)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        async move { (config, run.await.expect("schemathesis runs: make setup installs it")) }
    });
    for (config, out) in futures_util::future::join_all(runs).await {
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "schemathesis, {config}:\n{report}{}", String::from_utf8_lossy(&out.stderr));
        assert!(report.contains("generated") && report.contains("passed"), "{config}: it ran no test: {report}");
    }
    assert_eq!(stack.tokens().await, before, "Schemathesis changed the table");
    let _ = std::fs::remove_dir_all(work);
    let _ = std::fs::remove_file(env_file);
}
