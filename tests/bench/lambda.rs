//! `make bench`: the release `bootstrap` run as Lambda runs it, through a
//! local Runtime API, against DynamoDB Local, side by side with its floors:
//! a hello-world `lambda_http` function and a bare SDK `DeleteItem`.
//! Prints one table and checks the budgets; exits 1 when one is missed.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::faults::{rounds, FaultProxy};
use common::runtime_api::{Function, RuntimeApi};
use common::*;
use netbird_delete_token::store;
use serde_json::Value;

const COLD_STARTS: usize = 7;
const WARM: usize = 400;

#[derive(Default, Clone)]
struct Measured {
    init: Duration,
    first: Duration,
    p50: Duration,
    p99: Duration,
    cpu: Duration,
    rss_kib: u64,
    size: u64,
    rounds: Option<usize>,
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Cold starts (median init and first invocation), then warm invocations
/// on the last instance. `event(i)` is the i-th request; each must answer 200.
async fn measure(binary: &Path, env: &[(&str, String)], event: impl Fn(usize) -> Value) -> Measured {
    let (mut inits, mut firsts) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut result = Measured { size: std::fs::metadata(binary).expect("built").len(), ..Measured::default() };
    for cold in 0..COLD_STARTS {
        let runtime = RuntimeApi::start().await;
        let function = Function::spawn(binary, &runtime, env);
        let ready = runtime.wait_first_poll(Duration::from_secs(30)).await.expect("init finished");
        inits.push(ready - function.spawned);
        let started = Instant::now();
        let got = answer(runtime.invoke(&event(next)).await);
        firsts.push(started.elapsed());
        assert_eq!(got.status, 200, "{}", got.body);
        next += 1;
        if cold + 1 == COLD_STARTS {
            let cpu_before = function.cpu_time();
            let mut latencies = Vec::with_capacity(WARM);
            for _ in 0..WARM {
                let started = Instant::now();
                let got = answer(runtime.invoke(&event(next)).await);
                latencies.push(started.elapsed());
                assert_eq!(got.status, 200, "{}", got.body);
                next += 1;
            }
            result.cpu = (function.cpu_time() - cpu_before) / WARM as u32;
            result.rss_kib = function.peak_rss_kib();
            latencies.sort();
            result.p50 = percentile(&latencies, 0.50);
            result.p99 = percentile(&latencies, 0.99);
        }
        function.stop().await;
    }
    result.init = median(inits);
    result.first = median(firsts);
    result
}

/// The round-trip floor: one `DeleteItem` by key, warm, from this process.
async fn bare_delete_item(stack: &Stack) -> Measured {
    let client = aws_sdk_dynamodb::Client::new(&store::sdk_config().load().await);
    client.describe_table().table_name(&stack.config.tokens_table).send().await.unwrap();
    let mut latencies = Vec::with_capacity(WARM);
    for i in 0..WARM {
        let started = Instant::now();
        client
            .delete_item()
            .table_name(&stack.config.tokens_table)
            .key("userId", AttributeValue::S("floor".into()))
            .key("tokenId", AttributeValue::S(format!("b-{i}")))
            .send()
            .await
            .unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Measured { p50: percentile(&latencies, 0.50), p99: percentile(&latencies, 0.99), ..Measured::default() }
}

/// Sequential DynamoDB round trips of one request, counted at a proxy.
async fn round_trips(env: &[(&str, String)], binary: &Path, event: Value) -> usize {
    let proxy = FaultProxy::start(&endpoint()).await;
    proxy.set_latency(Duration::from_millis(30));
    let mut env = env.to_vec();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_DYNAMODB");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.clone()));
    let runtime = RuntimeApi::start().await;
    let function = Function::spawn(binary, &runtime, &env);
    runtime.wait_first_poll(Duration::from_secs(30)).await.expect("init finished");
    proxy.seen.lock().unwrap().clear();
    assert_eq!(answer(runtime.invoke(&event).await).status, 200);
    function.stop().await;
    let calls = proxy.seen.lock().unwrap().clone();
    rounds(&calls)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("the benchmark runs with `make bench`");
        return;
    }
    let release = target_dir().join("release");
    // BENCH_FUNCTION_BIN measures another build of the function (a profile
    // with symbols, say) against the same floors.
    let function_bin =
        std::env::var_os("BENCH_FUNCTION_BIN").map(PathBuf::from).unwrap_or(release.join("delete-token"));
    let hello_bin = release.join("examples/hello-floor");
    for bin in [&function_bin, &hello_bin] {
        assert!(bin.exists(), "{} is missing: run `make bench`", bin.display());
    }

    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "login").await;
    let seeds = (0..COLD_STARTS + WARM + 2)
        .flat_map(|i| [("o", format!("j-{i}")), ("o", format!("p-{i}")), ("floor", format!("b-{i}"))]);
    let seeds: Vec<_> = seeds.collect();
    for chunk in seeds.chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|(user, id)| stack.live_token(user, id))).await;
    }
    let env = stack.function_env(&endpoint());
    // RS256: what NetBird's usual identity providers sign with.
    let jwt = format!("Bearer {}", stack.keys.rs256.sign(&claims("o")).unwrap());
    let pat = format!("Token {pat}");

    let jwt_event = |i: usize| http_api_event("DELETE", "o", &format!("j-{i}"), Some(&jwt));
    let pat_event = |i: usize| http_api_event("DELETE", "o", &format!("p-{i}"), Some(&pat));
    let mut jwt_path = measure(&function_bin, &env, jwt_event).await;
    let mut pat_path = measure(&function_bin, &env, pat_event).await;
    let hello = measure(&hello_bin, &[], |_| http_api_event("DELETE", "o", "x", None)).await;
    let floor = bare_delete_item(&stack).await;
    jwt_path.rounds = Some(round_trips(&env, &function_bin, jwt_event(COLD_STARTS + WARM)).await);
    pat_path.rounds = Some(round_trips(&env, &function_bin, pat_event(COLD_STARTS + WARM)).await);

    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("\nmake bench: {cores} cores, {cpu_model}; DynamoDB Local on loopback; {COLD_STARTS} cold starts (medians), {WARM} warm invocations\n");
    println!("| metric | delete-token, JWT (RS256) | delete-token, PAT | hello-world floor | bare DeleteItem floor |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, f: &dyn Fn(&Measured) -> String, floor_too: bool| {
        let last = if floor_too { f(&floor) } else { "".into() };
        println!("| {name} | {} | {} | {} | {last} |", f(&jwt_path), f(&pat_path), f(&hello));
    };
    row("init (start → first poll)", &|m| ms(m.init), false);
    row("first invocation", &|m| ms(m.first), false);
    row("warm p50", &|m| ms(m.p50), true);
    row("warm p99", &|m| ms(m.p99), true);
    row("CPU per warm invocation", &|m| us(m.cpu), false);
    row("peak RSS", &|m| format!("{:.1} MiB", m.rss_kib as f64 / 1024.0), false);
    row("stripped binary", &|m| format!("{:.2} MiB", m.size as f64 / 1048576.0), false);
    row("sequential DynamoDB round trips", &|m| m.rounds.map(|r| r.to_string()).unwrap_or_default(), false);

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let budgets = [
        ("init ≤ 3× hello-world init", ratio(jwt_path.init.max(pat_path.init), hello.init), 3.0),
        ("first invocation ≤ 2.5× own warm p50 (JWT)", ratio(jwt_path.first, jwt_path.p50), 2.5),
        ("first invocation ≤ 2.5× own warm p50 (PAT)", ratio(pat_path.first, pat_path.p50), 2.5),
        ("warm p50 (JWT) ≤ 2.2× bare DeleteItem p50", ratio(jwt_path.p50, floor.p50), 2.2),
        ("CPU per warm invocation ≤ 2.5× hello-world", ratio(jwt_path.cpu.max(pat_path.cpu), hello.cpu), 2.5),
        ("peak RSS ≤ 16 MiB", jwt_path.rss_kib.max(pat_path.rss_kib) as f64 / 1024.0 / 16.0, 1.0),
        ("stripped binary ≤ 10 MiB", jwt_path.size as f64 / 1048576.0 / 10.0, 1.0),
        ("JWT self-delete in 2 round trips", jwt_path.rounds.unwrap_or(99) as f64 / 2.0, 1.0),
    ];
    println!("\n| budget | measured | limit | |\n|---|---|---|---|");
    let mut failed = 0;
    for (name, measured, limit) in budgets {
        let ok = measured <= limit;
        failed += usize::from(!ok);
        println!("| {name} | {measured:.2} | {limit:.2} | {} |", if ok { "pass" } else { "FAIL" });
    }
    if failed > 0 {
        eprintln!("\n{failed} budget(s) missed");
        std::process::exit(1);
    }
}
