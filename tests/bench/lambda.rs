//! `make bench`: the release `bootstrap` run as Lambda runs it, through a
//! local Runtime API, against DynamoDB Local, side by side with its floors:
//! a hello-world `lambda_http` function and one that makes the function's
//! own conditional `DeleteItem` and nothing else, both run the same way.
//! Prints one table and checks the budgets; exits 1 when one is missed.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::faults::{rounds, FaultProxy};
use common::runtime_api::{Function, RuntimeApi};
use common::*;
use serde_json::Value;

/// Per subject; this VM's noise needs many for a steady median.
const COLD_STARTS: usize = 41;
/// Counted warm invocations per subject: `WARM_BLOCKS` turns of `PER_BLOCK`.
const WARM_BLOCKS: usize = 16;
const PER_BLOCK: usize = 25;
/// Turns of [`warm`] that warm DynamoDB Local's JVM before measuring (300
/// requests per subject): on AWS the service side is always warm.
const SERVER_WARM_UP_BLOCKS: usize = 12;

#[derive(Default)]
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

/// A function the benchmark runs; `event(i)` is its i-th request, which
/// must answer 200.
struct Subject<'a> {
    binary: &'a Path,
    env: &'a [(&'static str, String)],
    event: &'a dyn Fn(usize) -> Value,
}

/// A fresh instance of `binary` that has finished init: its Runtime API,
/// its process, and its init (process start → first poll).
async fn start(binary: &Path, env: &[(&str, String)]) -> (RuntimeApi, Function, Duration) {
    let runtime = RuntimeApi::start().await;
    let function = Function::spawn(binary, &runtime, env);
    let ready = runtime.wait_first_poll(Duration::from_secs(30)).await.expect("init finished");
    let init = ready - function.spawned;
    (runtime, function, init)
}

/// One invocation, which must answer 200: its latency.
async fn invoke_ok(runtime: &RuntimeApi, event: &Value) -> Duration {
    let started = Instant::now();
    let got = http_answer(runtime.invoke(event).await);
    let latency = started.elapsed();
    assert_eq!(got.status, 200, "{}", got.body);
    latency
}

/// One cold start: (process start → first poll, first invocation).
async fn cold_start(subject: &Subject<'_>, i: usize) -> (Duration, Duration) {
    let (runtime, function, init) = start(subject.binary, subject.env).await;
    let first = invoke_ok(&runtime, &(subject.event)(i)).await;
    function.stop().await;
    (init, first)
}

/// Warm instances of all subjects, measured in turns of `PER_BLOCK`
/// invocations so that the machine's moods fall on all alike. Each turn
/// starts with one uncounted invocation: in strict turns every process woke
/// to caches another had filled, which multiplied the hello floor's CPU per
/// invocation by five to seven.
/// Events are numbered from `from` per subject; returns latency
/// percentiles, CPU per invocation (the median of the blocks' means) and
/// peak RSS.
async fn warm(subjects: &[Subject<'_>], from: usize, blocks: usize) -> Vec<Measured> {
    struct Instance {
        runtime: RuntimeApi,
        function: Function,
        next: usize,
        latencies: Vec<Duration>,
        cpu: Vec<Duration>,
    }
    impl Instance {
        async fn invoke(&mut self, subject: &Subject<'_>) -> Duration {
            self.next += 1;
            invoke_ok(&self.runtime, &(subject.event)(self.next - 1)).await
        }
    }
    let mut instances = Vec::new();
    for subject in subjects {
        let (runtime, function, _) = start(subject.binary, subject.env).await;
        instances.push(Instance { runtime, function, next: from, latencies: Vec::new(), cpu: Vec::new() });
    }
    for _ in 0..blocks {
        for (subject, instance) in subjects.iter().zip(&mut instances) {
            instance.invoke(subject).await;
            let cpu_before = instance.function.cpu_time();
            for _ in 0..PER_BLOCK {
                let latency = instance.invoke(subject).await;
                instance.latencies.push(latency);
            }
            instance.cpu.push((instance.function.cpu_time() - cpu_before) / PER_BLOCK as u32);
        }
    }
    let mut measured = Vec::new();
    for (subject, mut instance) in subjects.iter().zip(instances) {
        let rss_kib = instance.function.peak_rss_kib();
        instance.function.stop().await;
        instance.latencies.sort();
        measured.push(Measured {
            p50: percentile(&instance.latencies, 0.50),
            p99: percentile(&instance.latencies, 0.99),
            cpu: median(instance.cpu),
            rss_kib,
            size: std::fs::metadata(subject.binary).expect("built").len(),
            ..Measured::default()
        });
    }
    measured
}

/// Events one subject's [`warm`] uses.
const fn warm_events(blocks: usize) -> usize {
    blocks * (1 + PER_BLOCK)
}

/// Sequential DynamoDB round trips of one request, counted at a proxy.
async fn round_trips(env: &[(&str, String)], binary: &Path, event: Value) -> usize {
    let proxy = FaultProxy::start(&endpoint()).await;
    proxy.set_latency(Duration::from_millis(30));
    let mut env = env.to_vec();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_DYNAMODB");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.clone()));
    let (runtime, function, _) = start(binary, &env).await;
    proxy.seen.lock().unwrap().clear();
    invoke_ok(&runtime, &event).await;
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
    let delete_item_bin = release.join("examples/delete-item-floor");
    for bin in [&function_bin, &hello_bin, &delete_item_bin] {
        assert!(bin.exists(), "{} is missing: run `make bench`", bin.display());
    }

    let stack = Stack::new().await;
    stack.user("o", ACCOUNT, "owner").await;
    let pat = stack.live_token("o", "login").await;
    // Event ids: DynamoDB Local's warm-up, then the cold starts, then the
    // warm instances, then the round-trip count.
    let cold_from = warm_events(SERVER_WARM_UP_BLOCKS);
    let warm_from = cold_from + COLD_STARTS;
    let last = warm_from + warm_events(WARM_BLOCKS);
    let seeds: Vec<_> = (0..=last)
        .flat_map(|i| [("o", format!("j-{i}")), ("o", format!("p-{i}")), ("floor", format!("b-{i}"))])
        .collect();
    for chunk in seeds.chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|(user, id)| stack.live_token(user, id))).await;
    }
    let env = stack.function_env(&endpoint());
    let mut floor_env = env.clone();
    floor_env.push(("FLOOR_ACCOUNT", ACCOUNT.into()));
    // RS256: what NetBird's usual identity providers sign with.
    let jwt = format!("Bearer {}", stack.keys.rs256.sign(&claims("o")).unwrap());
    let pat = format!("Token {pat}");
    let jwt_event = |i: usize| http_api_event("DELETE", "o", &format!("j-{i}"), Some(&jwt));
    let pat_event = |i: usize| http_api_event("DELETE", "o", &format!("p-{i}"), Some(&pat));
    let hello_event = |_: usize| http_api_event("DELETE", "o", "x", None);
    let floor_event = |i: usize| http_api_event("DELETE", "floor", &format!("b-{i}"), None);
    let subjects = [
        Subject { binary: &function_bin, env: &env, event: &jwt_event },
        Subject { binary: &function_bin, env: &env, event: &pat_event },
        Subject { binary: &hello_bin, env: &[], event: &hello_event },
        Subject { binary: &delete_item_bin, env: &floor_env, event: &floor_event },
    ];

    warm(&subjects, 0, SERVER_WARM_UP_BLOCKS).await;
    // Cold starts in turns, so that the machine's moods fall on all alike.
    let mut colds = vec![(Vec::new(), Vec::new()); subjects.len()];
    for i in cold_from..warm_from {
        for (subject, (inits, firsts)) in subjects.iter().zip(&mut colds) {
            let (init, first) = cold_start(subject, i).await;
            inits.push(init);
            firsts.push(first);
        }
    }
    // Init cannot depend on the request that follows it: the two paths'
    // cold starts are samples of the one binary's init.
    let function_init = median(
        subjects
            .iter()
            .zip(&colds)
            .filter(|(subject, _)| subject.binary == function_bin.as_path())
            .flat_map(|(_, (inits, _))| inits.clone())
            .collect(),
    );
    let mut measured = warm(&subjects, warm_from, WARM_BLOCKS).await;
    for ((subject, (inits, firsts)), m) in subjects.iter().zip(colds).zip(&mut measured) {
        m.init = median(inits);
        m.first = median(firsts);
        if subject.binary != hello_bin.as_path() {
            m.rounds = Some(round_trips(subject.env, subject.binary, (subject.event)(last)).await);
        }
    }
    let [jwt_path, pat_path, hello, floor] = <[Measured; 4]>::try_from(measured).ok().unwrap();

    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("\nmake bench: {cores} cores, {cpu_model}; DynamoDB Local on loopback; {COLD_STARTS} cold starts (medians), {} warm invocations in turns of {PER_BLOCK}\n", WARM_BLOCKS * PER_BLOCK);
    println!("| metric | delete-token, JWT (RS256) | delete-token, PAT | hello-world floor | DeleteItem floor |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, f: &dyn Fn(&Measured) -> String| {
        println!("| {name} | {} | {} | {} | {} |", f(&jwt_path), f(&pat_path), f(&hello), f(&floor));
    };
    row("init (start → first poll)", &|m| ms(m.init));
    row("first invocation", &|m| ms(m.first));
    row("warm p50", &|m| ms(m.p50));
    row("warm p99", &|m| ms(m.p99));
    row("CPU per warm invocation", &|m| us(m.cpu));
    row("peak RSS", &|m| format!("{:.1} MiB", m.rss_kib as f64 / 1024.0));
    row("stripped binary", &|m| format!("{:.2} MiB", m.size as f64 / 1048576.0));
    row("sequential DynamoDB round trips", &|m| m.rounds.map(|r| r.to_string()).unwrap_or_default());
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let times = |r: f64| format!("{r:.2}×");
    row("init ÷ hello-world floor's", &|m| times(ratio(m.init, hello.init)));
    row("warm p50 ÷ DeleteItem floor's", &|m| times(ratio(m.p50, floor.p50)));
    row("CPU ÷ hello-world floor's", &|m| times(ratio(m.cpu, hello.cpu)));
    row("CPU ÷ DeleteItem floor's", &|m| times(ratio(m.cpu, floor.cpu)));

    let budgets = [
        ("init (both paths' cold starts) ≤ 3× hello-world init", ratio(function_init, hello.init), 3.0),
        ("first invocation ≤ 2.5× own warm p50 (JWT)", ratio(jwt_path.first, jwt_path.p50), 2.5),
        ("first invocation ≤ 2.5× own warm p50 (PAT)", ratio(pat_path.first, pat_path.p50), 2.5),
        ("warm p50 (JWT) ≤ 2.2× DeleteItem floor's", ratio(jwt_path.p50, floor.p50), 2.2),
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
