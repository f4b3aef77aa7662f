//! The local tools never leak or reach out: `devstack` writes only to a
//! DynamoDB Local on this machine, whatever the developer's AWS settings
//! say, and DynamoDB Local answers no web page.

use crate::common::*;

/// The demo PATs are published (`events/`): `devstack` refuses any other
/// endpoint before writing.
#[test]
fn devstack_writes_only_to_a_local_dynamodb() {
    for endpoint in ["https://dynamodb.us-east-1.amazonaws.com", "http://127.0.0.1.nip.io:8000"] {
        for args in [&["tables"][..], &["user", "--id", "x", "--account", "a", "--role", "owner"], &["demo"]] {
            let out = devstack(args).env("AWS_ENDPOINT_URL_DYNAMODB", endpoint).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} against {endpoint}");
            // Refused by the check, before any call could fail on its own.
            assert!(stderr.contains("not a loopback address"), "{args:?}: {stderr}");
        }
    }
}

/// A profile that tells the SDK to ignore configured endpoints (and names
/// real credentials) would send an SDK-configured client to the real
/// account; `devstack` sets its endpoint and dummy keys itself.
#[tokio::test(flavor = "multi_thread")]
async fn devstack_ignores_profiles_that_would_send_it_to_aws() {
    let dir = std::env::temp_dir().join(format!("devstack-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[profile real]\nignore_configured_endpoint_urls = true\nregion = eu-west-1\n").unwrap();
    let credentials = dir.join("credentials");
    std::fs::write(&credentials, "[real]\naws_access_key_id = AKIAREAL\naws_secret_access_key = real\n").unwrap();
    let table = format!("profile-check-{}-{}", std::process::id(), now());
    let out = devstack(&["tables"])
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint())
        .env("TOKENS_TABLE", &table)
        .env("USERS_TABLE", format!("{table}-users"))
        .env("AWS_PROFILE", "real")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client =
        aws_sdk_dynamodb::Client::new(&aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await);
    let tables = client.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&table), "the table is on DynamoDB Local");
}

/// DynamoDB Local listens on every interface (it cannot bind to loopback
/// alone); a page the developer opens must not be able to read it. Its
/// CORS allow-list is set to one origin that cannot exist: that origin is
/// answered (the setting is in force), any other is not.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_local_answers_no_web_page() {
    let http = reqwest::Client::new();
    let allowed_for = |origin: &'static str| {
        let preflight = http
            .request(reqwest::Method::OPTIONS, endpoint())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-amz-target,content-type,authorization")
            .send();
        async move {
            let headers = preflight.await.unwrap().headers().clone();
            headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(allowed_for("https://cors.invalid").await.as_deref(), Some("https://cors.invalid"));
    for origin in ["https://evil.example", "null", "http://localhost:3000", "http://127.0.0.1:9000"] {
        assert_eq!(allowed_for(origin).await, None, "{origin}");
    }
}

fn devstack(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_devstack"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env("TOKENS_TABLE", "t").env("USERS_TABLE", "u");
    command
}

/// `make run` and `make test` run under `scripts/with-dynamodb-local`: what
/// it runs gets dummy keys, and never the developer's profile or session.
#[test]
fn the_local_stack_never_gets_the_developers_aws_identity() {
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/with-dynamodb-local"))
        .arg("env")
        .env("AWS_PROFILE", "production")
        .env("AWS_DEFAULT_PROFILE", "production")
        .env("AWS_ACCESS_KEY_ID", "AKIAREALREALREAL")
        .env("AWS_SECRET_ACCESS_KEY", "real-secret")
        .env("AWS_SESSION_TOKEN", "real-session")
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned);
    assert_eq!(value("AWS_ACCESS_KEY_ID").as_deref(), Some("local"));
    assert_eq!(value("AWS_SECRET_ACCESS_KEY").as_deref(), Some("local"));
    for name in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"] {
        assert_eq!(value(name), None, "{name} reached the local stack");
    }
    assert!(!env.contains("AKIAREAL") && !env.contains("real-secret") && !env.contains("real-session"));
    assert!(value("AWS_ENDPOINT_URL_DYNAMODB").is_some_and(|url| url.starts_with("http://127.0.0.1:")));
}

/// A token handed to `make smoke` as a make argument, which `ps` shows, is
/// refused before anything runs.
#[test]
fn make_smoke_refuses_a_token_on_its_command_line() {
    let out = std::process::Command::new("make")
        .args(["--no-print-directory", "smoke", "TOKEN=nbp_on_the_command_line", "URL=http://127.0.0.1:9"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TOKEN")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(stderr.contains("TOKEN on make's command line shows in ps"), "{stderr}");
    assert!(!stdout.contains("preflight"), "the smoke checks never ran: {stdout}");
}
