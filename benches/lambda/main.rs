//! `make bench`: the release `bootstrap` run as Lambda runs it, through a
//! local Runtime API, beside its floors (a hello-world `lambda_http`
//! function, and one that makes the function's own conditional `DeleteItem`
//! and nothing else), in Lambda's conditions: for 128, 256 and 1024 MB,
//! init unthrottled, then the CPU share of that memory size as a CFS quota
//! (`cpu_share`), DynamoDB behind TLS a round trip away (`tls`); and once
//! at full CPU against plain-HTTP DynamoDB Local, where CPU per invocation
//! is compared. The function runs with its keys inline (`AUTH_JWKS`) and as
//! deployments run it, by OIDC discovery from a provider behind TLS, its
//! own round trip away, with the shared key cache. Several runs; the
//! budgets are judged on the median run (CPU's on every turn of every run,
//! each against the floor's in the same turn), and every figure is printed
//! with its range.
//!
//! `BENCH_RUNS` (default 3), `BENCH_RTT_MS` (DynamoDB, default 2) and
//! `BENCH_PROVIDER_RTT_MS` (default 20) change the runs and the round
//! trips; `BENCH_FUNCTION_BIN` measures another build.

// The test kit, of which the bench uses a part.
#[allow(dead_code, unused_imports)]
#[path = "../../tests/common/mod.rs"]
mod common;
mod cpu_share;
mod tls;

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::faults::{rounds, FaultProxy};
use common::runtime_api::{Function, RuntimeApi};
use common::*;
use cpu_share::CpuShare;
use netbird_delete_token::auth::provider::{cache::CachedKeySet, discovery::KeyLocation};
use netbird_delete_token::config::KeyUrl;
use serde_json::{json, Value};
use tls::{Tls, TlsProvider};

const MEMORY_SIZES: [u64; 3] = [128, 256, 1024];
/// Per subject, condition and run.
const COLD_STARTS: usize = 15;
/// Counted warm invocations per subject: `WARM_BLOCKS` turns of `PER_BLOCK`.
const WARM_BLOCKS: usize = 8;
const PER_BLOCK: usize = 25;
/// Turns of [`warm`] that warm DynamoDB Local's JVM before measuring: on
/// AWS the service side is always warm.
const SERVER_WARM_UP_BLOCKS: usize = 12;
const WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// Instances measured in each run for their first request after the key
/// set's lifetime, half of each kind.
const AFTER_LIFETIME_INSTANCES: usize = 6;

/// The subjects, in the order of [`subjects`].
const JWT: usize = 0;
const PAT: usize = 1;
const PAT_LIMITED: usize = 2;
const JWT_OIDC: usize = 3;
const PAT_OIDC: usize = 4;
const FLOOR: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// Full CPU, plain HTTP, no delay: where CPU per invocation is compared.
    FullCpu,
    /// Lambda at this many MB.
    Lambda(u64),
}

impl Condition {
    fn label(self) -> String {
        match self {
            Condition::FullCpu => "full CPU, plain HTTP".into(),
            Condition::Lambda(mb) => format!("{mb} MB"),
        }
    }
}

/// What one condition gives a function: its settings, and the CPU share
/// it gets from its first invocation on.
struct Setting {
    condition: Condition,
    env: Vec<(&'static str, String)>,
    share: Option<CpuShare>,
}

#[derive(Default)]
struct Measured {
    init: Duration,
    first: Duration,
    p50: Duration,
    p99: Duration,
    /// Each turn's CPU per invocation, in the order the turns ran.
    cpu_turns: Vec<Duration>,
    /// Mean GB-ms billed per warm invocation (each rounded up to 1 ms).
    billed: f64,
    rss_kib: u64,
    /// Bytes the function wrote to its log per warm invocation (what
    /// CloudWatch Logs ingests, Lambda's own lines aside).
    log_bytes: f64,
}

/// One figure of a [`Measured`].
type Metric = dyn Fn(&Measured) -> f64;

impl Measured {
    fn cold(&self) -> Duration {
        self.init + self.first
    }
}

/// A function the bench runs; each event must answer 200.
struct Subject {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
    make_event: Box<dyn Fn(usize) -> Value>,
    next: Cell<usize>,
}

impl Subject {
    fn event(&self) -> Value {
        let i = self.next.get();
        self.next.set(i + 1);
        (self.make_event)(i)
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A process's CPU time so far (nanosecond resolution, from the
/// scheduler), all its threads together.
fn cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten();
    let stats = tasks.filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok());
    Duration::from_nanos(stats.map(|s| s.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0)).sum())
}

/// The process's peak resident memory (`VmHWM` of `/proc/<pid>/status`), KiB.
fn peak_rss_kib(function: &Function) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", function.pid())).unwrap();
    let value = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap();
    value.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Bytes the function has written to its log so far.
fn log_bytes(function: &Function) -> usize {
    function.output.lock().unwrap().iter().map(|line| line.len() + 1).sum()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from)
}

/// A fresh instance that has finished init (process start → first poll),
/// then given the setting's CPU share.
async fn start(subject: &Subject, setting: &Setting) -> (RuntimeApi, Function, Duration) {
    let runtime = RuntimeApi::start().await;
    let spawned = Instant::now();
    let env: Vec<_> = subject.env.iter().chain(&setting.env).cloned().collect();
    let function = Function::spawn(&subject.binary, &runtime, &env);
    let ready = runtime.wait_first_poll(Duration::from_secs(30)).await.expect("init finished");
    if let Some(share) = &setting.share {
        share.admit(function.pid());
    }
    (runtime, function, ready - spawned)
}

/// One invocation of `function`, which must answer 200: its latency.
async fn invoke_ok(runtime: &RuntimeApi, function: &Function, event: &Value) -> Duration {
    let started = Instant::now();
    let got = http_answer(runtime.invoke(event).await);
    let latency = started.elapsed();
    if got.status != 200 {
        let log = function.output.lock().unwrap().join("\n");
        panic!("answered {} {}; the function logged:\n{log}", got.status, got.body);
    }
    latency
}

/// Cold starts of all subjects in turns, so that the machine's moods fall
/// on all alike: (inits, first invocations) per subject.
async fn cold_starts(subjects: &[Subject], setting: &Setting, count: usize) -> Vec<(Vec<Duration>, Vec<Duration>)> {
    let mut colds = vec![(Vec::new(), Vec::new()); subjects.len()];
    for _ in 0..count {
        for (subject, (inits, firsts)) in subjects.iter().zip(&mut colds) {
            let (runtime, function, init) = start(subject, setting).await;
            firsts.push(invoke_ok(&runtime, &function, &subject.event()).await);
            inits.push(init);
            function.stop().await;
        }
    }
    colds
}

/// Warm instances of all subjects, measured in turns of `PER_BLOCK`
/// invocations, each turn opening with one uncounted invocation (in strict
/// turns every process woke to caches another had filled).
async fn warm(subjects: &[Subject], setting: &Setting, blocks: usize) -> Vec<Measured> {
    let mut instances = Vec::new();
    for subject in subjects {
        let (runtime, function, _) = start(subject, setting).await;
        instances.push((runtime, function, Vec::new(), Vec::new(), 0));
    }
    for _ in 0..blocks {
        for (subject, (runtime, function, latencies, cpu, logged)) in subjects.iter().zip(&mut instances) {
            invoke_ok(runtime, function, &subject.event()).await;
            let (cpu_before, log_before) = (cpu_time(function.pid()), log_bytes(function));
            for _ in 0..PER_BLOCK {
                latencies.push(invoke_ok(runtime, function, &subject.event()).await);
            }
            cpu.push((cpu_time(function.pid()) - cpu_before) / PER_BLOCK as u32);
            *logged += log_bytes(function) - log_before;
        }
    }
    let gb = if let Condition::Lambda(mb) = setting.condition { mb as f64 / 1024.0 } else { 0.0 };
    let mut measured = Vec::new();
    for (_, function, mut latencies, cpu_turns, logged) in instances {
        let rss_kib = peak_rss_kib(&function);
        function.stop().await;
        let (n, billed) = (latencies.len() as f64, latencies.iter().map(|l| ms(*l).ceil() * gb).sum::<f64>());
        latencies.sort();
        let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
        let log_bytes = logged as f64 / n;
        measured.push(Measured { p50, p99, cpu_turns, billed: billed / n, rss_kib, log_bytes, ..Measured::default() });
    }
    measured
}

/// Sequential DynamoDB round trips of one request, counted at a proxy.
async fn round_trips(subject: &Subject) -> usize {
    let proxy = FaultProxy::start(&endpoint()).await;
    proxy.set_latency(Duration::from_millis(30));
    let env = vec![("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint.clone())];
    let (runtime, function, _) = start(subject, &Setting { condition: Condition::FullCpu, env, share: None }).await;
    proxy.seen.lock().unwrap().clear();
    invoke_ok(&runtime, &function, &subject.event()).await;
    function.stop().await;
    let calls = proxy.seen.lock().unwrap();
    rounds(&calls)
}

/// Whether the AWS-LC library most recently built under `build_dir` has
/// CPU-jitter entropy compiled in (`None`: no such build).
fn jitter_entropy_in(build_dir: &Path) -> Option<bool> {
    let newest = std::fs::read_dir(build_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("aws-lc-sys-"))
        .flat_map(|e| std::fs::read_dir(e.path().join("out")).into_iter().flatten().flatten())
        .filter(|f| f.file_name().to_string_lossy().ends_with("_crypto.a"))
        .max_by_key(|f| f.metadata().and_then(|m| m.modified()).ok())?;
    let library = std::fs::read(newest.path()).ok()?;
    Some(library.windows(b"jent_read_entropy".len()).any(|w| w == b"jent_read_entropy"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `median (min–max)` of `values`.
fn spread(values: &[f64], unit: &str, digits: usize) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted[sorted.len() / 2];
    if sorted.len() == 1 {
        return format!("{mid:.digits$} {unit}");
    }
    format!("{mid:.digits$} ({:.digits$}–{:.digits$}) {unit}", sorted[0], sorted[sorted.len() - 1])
}

fn mid(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("the benchmark runs with `make bench`");
        return;
    }
    let env_ms =
        |name, default| Duration::from_millis(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default));
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let (rtt, provider_rtt) = (env_ms("BENCH_RTT_MS", 2), env_ms("BENCH_PROVIDER_RTT_MS", 20));
    let release = target_dir().join("release");
    // The function, the hello floor, the DeleteItem floor.
    let bins = [
        std::env::var_os("BENCH_FUNCTION_BIN").map(PathBuf::from).unwrap_or(release.join("delete-token")),
        release.join("examples/hello-floor"),
        release.join("examples/delete-item-floor"),
    ];
    for bin in &bins {
        assert!(bin.exists(), "{} is missing: run `make bench`", bin.display());
    }
    let per_run = (1 + MEMORY_SIZES.len()) * (COLD_STARTS + WARM_BLOCKS * (1 + PER_BLOCK));
    let stack = Stack::new().await;
    let tls = Tls::new();
    let provider = tls.provider(provider_rtt, |base| provider_documents(base, &stack)).await;
    // Each subject's events: the server's warm-up, the runs, the round trips,
    // and (discovery) two per instance of each run's requests after the lifetime.
    let events = SERVER_WARM_UP_BLOCKS * (1 + PER_BLOCK) + runs * (per_run + 2 * AFTER_LIFETIME_INSTANCES) + 2;
    let subjects = subjects(&stack, &bins, &provider, &tls, events).await;
    let (settings, throttled) = settings(&tls.proxy(&endpoint(), rtt).await, &tls);

    // The first instance with discovery fills the shared key cache: the
    // provider's one fetch of the whole bench; every later instance finds
    // the cache fresh.
    cold_starts(&subjects[JWT_OIDC..=JWT_OIDC], &settings[0], 1).await;
    let key_sets = provider.hits("/certs");
    warm(&subjects, &settings[0], SERVER_WARM_UP_BLOCKS).await;
    let mut results = Vec::new();
    for run in 1..=runs {
        let mut by_condition = Vec::new();
        for setting in &settings {
            let colds = cold_starts(&subjects, setting, COLD_STARTS).await;
            let mut measured = warm(&subjects, setting, WARM_BLOCKS).await;
            for (m, (inits, firsts)) in measured.iter_mut().zip(colds) {
                (m.init, m.first) = (median(inits), median(firsts));
            }
            let (jwt, oidc, p50) = (ms(measured[JWT].cold()), ms(measured[JWT_OIDC].cold()), ms(measured[JWT].p50));
            let label = setting.condition.label();
            eprintln!("run {run}/{runs}, {label}: JWT cold {jwt:.1} ms (discovery {oidc:.1} ms), p50 {p50:.2} ms");
            by_condition.push(measured);
        }
        results.push(by_condition);
    }
    let asked = [key_sets, provider.hits("/certs") - key_sets, provider.hits(WELL_KNOWN)];
    let trips =
        [round_trips(&subjects[JWT]).await, round_trips(&subjects[PAT]).await, round_trips(&subjects[FLOOR]).await];
    let deployed = settings.iter().find(|s| s.condition == Condition::Lambda(256)).unwrap();
    let mut after = AfterLifetime::default();
    for _ in 0..runs {
        after.measure(&stack, &subjects[JWT_OIDC], deployed, &provider).await;
    }
    let refused = refused_log_bytes(&stack, &subjects[JWT], &settings[0]).await;
    report(&Report { results, settings, subjects, bins, rtt, provider_rtt, throttled, asked, trips, after, refused });
}

/// The first request an instance serves once its key set is past its
/// lifetime, at the deployed size: when another instance has refreshed the
/// fleet's cache (one cache read), and when none has (the provider's two
/// documents and the cache write); with what the provider was asked.
#[derive(Default)]
struct AfterLifetime {
    warm: Vec<Duration>,
    /// The first requests, and the provider's requests during them: `[0]`
    /// when another instance had refreshed, `[1]` when none had.
    first: [Vec<Duration>; 2],
    asked: [usize; 2],
}

impl AfterLifetime {
    /// Instances that start from a fleet entry about to pass its lifetime,
    /// serve a JWT while it is fresh, wait past it, then each serves one more,
    /// after the test has made the entry as another instance would leave it.
    async fn measure(&mut self, stack: &Stack, subject: &Subject, setting: &Setting, provider: &TlsProvider) {
        const LIFETIME_MS: u64 = 30_000;
        let endpoint = KeyUrl::parse(&format!("{}{WELL_KNOWN}", provider.base)).unwrap();
        let source = KeyLocation::Discovery { endpoint, issuer: ISSUER.into() }.cache_key();
        let put = |fetched_at_ms: u64| {
            let entry = CachedKeySet { document: stack.keys.jwks(), fetched_at_ms, max_age_secs: LIFETIME_MS / 1000 };
            stack.cache_keys(source.clone(), entry)
        };
        let left = Duration::from_secs(3);
        put(now_ms() - LIFETIME_MS + left.as_millis() as u64).await;
        let started = Instant::now();
        let mut instances = Vec::new();
        for _ in 0..AFTER_LIFETIME_INSTANCES {
            let (runtime, function, _) = start(subject, setting).await;
            self.warm.push(invoke_ok(&runtime, &function, &subject.event()).await);
            instances.push((runtime, function));
        }
        assert!(started.elapsed() < left, "the instances started while the entry was fresh");
        tokio::time::sleep(left.saturating_sub(started.elapsed()) + Duration::from_millis(500)).await;
        let asked = || provider.hits(WELL_KNOWN) + provider.hits("/certs");
        for (i, (runtime, function)) in instances.into_iter().enumerate() {
            let kind = i % 2; // 0: another instance had refreshed; 1: none had
            put(if kind == 0 { now_ms() } else { now_ms() - LIFETIME_MS - 1_000 }).await;
            let before = asked();
            self.first[kind].push(invoke_ok(&runtime, &function, &subject.event()).await);
            self.asked[kind] += asked() - before;
            let lines = function.stop().await;
            let stale = lines.iter().any(|l| l.contains("KeysStale"));
            assert!(!stale, "a healthy provider and cache report nothing stale: {lines:#?}");
        }
    }
}

/// Bytes one refused request writes to the log (its request line with the
/// reason and the credential's values), for a wrong audience, an expired
/// token and a key the set lacks.
async fn refused_log_bytes(stack: &Stack, subject: &Subject, setting: &Setting) -> f64 {
    let (runtime, function, _) = start(subject, setting).await;
    let mut audience = claims("o");
    audience["aud"] = json!("netbird-dashboard");
    let mut expired = claims("o");
    expired["exp"] = json!(now() - 3_600);
    let tokens = [
        stack.keys.rs256.sign(&audience).unwrap(),
        stack.keys.rs256.sign(&expired).unwrap(),
        netbird_delete_token::devkeys::DevKey::generate_es256("rotated").unwrap().sign(&claims("o")).unwrap(),
    ];
    let before = log_bytes(&function);
    for token in &tokens {
        let event = http_api_event("DELETE", "o", "refused", Some(&format!("Bearer {token}")));
        assert_eq!(http_answer(runtime.invoke(&event).await).status, 401);
    }
    let bytes = (log_bytes(&function) - before) as f64 / tokens.len() as f64;
    function.stop().await;
    bytes
}

/// The provider's OpenID configuration and key set, as a provider at `base` serves them.
fn provider_documents(base: &str, stack: &Stack) -> HashMap<String, String> {
    HashMap::from([
        (WELL_KNOWN.to_owned(), json!({ "issuer": ISSUER, "jwks_uri": format!("{base}/certs") }).to_string()),
        ("/certs".to_owned(), stack.keys.jwks()),
    ])
}

/// The function with inline keys and with keys by discovery, on both
/// paths, and the two floors, each with `events` tokens of its own to delete.
async fn subjects(stack: &Stack, bins: &[PathBuf], provider: &TlsProvider, tls: &Tls, events: usize) -> Vec<Subject> {
    stack.user("o", ACCOUNT, "owner").await;
    let pat = format!("Token {}", stack.live_token("o", "login").await);
    let prefixes = [("o", "j"), ("o", "p"), ("o", "pl"), ("o", "jd"), ("o", "pd"), ("floor", "b")];
    let seeds: Vec<_> = (0..events).flat_map(|i| prefixes.map(|(user, p)| (user, format!("{p}-{i}")))).collect();
    for chunk in seeds.chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|(user, id)| stack.live_token(user, id))).await;
    }
    let inline = stack.function_env(&endpoint());
    let mut discovery: Vec<_> = inline.iter().filter(|(k, _)| *k != "AUTH_JWKS").cloned().collect();
    discovery.push(("AUTH_OIDC_CONFIG_ENDPOINT", format!("{}{WELL_KNOWN}", provider.base)));
    discovery.push(("SSL_CERT_FILE", tls.ca_file.display().to_string()));
    // NetBird's rate limit on, never refusing here: its write path, measured.
    let mut limited = inline.clone();
    limited.extend([
        ("NB_API_RATE_LIMITING_ENABLED", "true".to_owned()),
        ("NB_API_RATE_LIMITING_RPM", "1000000".to_owned()),
        ("NB_API_RATE_LIMITING_BURST", "1000000".to_owned()),
    ]);
    let mut floor_env = inline.clone();
    floor_env.push(("FLOOR_ACCOUNT", ACCOUNT.into()));
    // RS256: what NetBird's usual identity providers sign with.
    let jwt = format!("Bearer {}", stack.keys.rs256.sign(&claims("o")).unwrap());
    let delete = |user: &'static str, prefix: &'static str, auth: Option<&str>| -> Box<dyn Fn(usize) -> Value> {
        let auth = auth.map(str::to_owned);
        Box::new(move |i| http_api_event("DELETE", user, &format!("{prefix}-{i}"), auth.as_deref()))
    };
    let subject = |name, binary: &PathBuf, env: &Vec<_>, make_event| {
        let (binary, env, next) = (binary.clone(), env.clone(), Cell::new(0));
        Subject { name, binary, env, make_event, next }
    };
    let (function, hello, floor) = (&bins[0], &bins[1], &bins[2]);
    vec![
        subject("JWT (RS256)", function, &inline, delete("o", "j", Some(&jwt))),
        subject("PAT", function, &inline, delete("o", "p", Some(&pat))),
        subject("PAT, rate limit on", function, &limited, delete("o", "pl", Some(&pat))),
        subject("JWT, discovery", function, &discovery, delete("o", "jd", Some(&jwt))),
        subject("PAT, discovery", function, &discovery, delete("o", "pd", Some(&pat))),
        subject("hello floor", hello, &Vec::new(), Box::new(|_| http_api_event("DELETE", "o", "x", None))),
        subject("DeleteItem floor", floor, &floor_env, delete("floor", "b", None)),
    ]
}

/// Each condition's settings, full CPU first; `false` when no CPU share could be enforced.
fn settings(dynamodb: &str, tls: &Tls) -> (Vec<Setting>, bool) {
    let mut throttled = true;
    let mut settings = vec![Setting { condition: Condition::FullCpu, env: Vec::new(), share: None }];
    for mb in MEMORY_SIZES {
        let share = CpuShare::new(mb)
            .inspect_err(|why| eprintln!("CPU share not enforced ({why}): the Lambda conditions run unthrottled"))
            .ok();
        throttled &= share.is_some();
        let env = vec![
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned()),
            ("SSL_CERT_FILE", tls.ca_file.display().to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb.to_string()),
        ];
        settings.push(Setting { condition: Condition::Lambda(mb), env, share });
    }
    (settings, throttled)
}

/// Everything measured, for the report.
struct Report {
    /// `results[run][condition][subject]`, conditions in the order of `settings`.
    results: Vec<Vec<Vec<Measured>>>,
    settings: Vec<Setting>,
    subjects: Vec<Subject>,
    /// The function, the hello floor, the DeleteItem floor.
    bins: [PathBuf; 3],
    rtt: Duration,
    provider_rtt: Duration,
    throttled: bool,
    /// Key sets fetched by the instance that filled the cache, and by every
    /// instance after it; OpenID configurations read.
    asked: [usize; 3],
    /// Sequential round trips: JWT, PAT, DeleteItem floor.
    trips: [usize; 3],
    after: AfterLifetime,
    /// Log bytes per refused request.
    refused: f64,
}

impl Report {
    /// Every run's value of one metric, for one condition and subject.
    fn values(&self, c: usize, s: usize, f: &Metric) -> Vec<f64> {
        self.results.iter().map(|run| f(&run[c][s])).collect()
    }

    fn lambda(&self, mb: u64) -> usize {
        self.settings.iter().position(|s| s.condition == Condition::Lambda(mb)).unwrap()
    }
}

fn report(r: &Report) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).unwrap_or_default();
    let (cpu_model, runs) = (model.trim_start_matches([' ', '\t', ':']), r.results.len());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let enforced = if r.throttled { "" } else { " (NOT ENFORCED: no writable cgroup)" };
    let (warm, rtt, provider_rtt) = (WARM_BLOCKS * PER_BLOCK, r.rtt.as_millis(), r.provider_rtt.as_millis());
    println!(
        "\nmake bench: {cores} cores, {cpu_model}; {runs} runs, median (min–max) over runs; per run and condition \
         {COLD_STARTS} cold starts (medians) and {warm} warm invocations per subject; Lambda conditions: init \
         unthrottled, then memory/1769 MB of a vCPU per 20 ms{enforced}, DynamoDB Local behind TLS with a {rtt} ms \
         round trip; the identity provider behind TLS with a {provider_rtt} ms round trip"
    );
    let rows: [(&str, &Metric, &str, usize); 9] = [
        ("init", &|m| ms(m.init), "ms", 1),
        ("first invocation", &|m| ms(m.first), "ms", 1),
        ("cold = init + first", &|m| ms(m.cold()), "ms", 1),
        ("warm p50", &|m| ms(m.p50), "ms", 2),
        ("warm p99", &|m| ms(m.p99), "ms", 2),
        // The median of the turns' CPU per invocation.
        ("CPU per warm invocation", &|m| median(m.cpu_turns.clone()).as_secs_f64() * 1e6, "µs", 0),
        ("GB-ms billed per warm request", &|m| m.billed, "", 3),
        ("peak RSS", &|m| m.rss_kib as f64 / 1024.0, "MiB", 1),
        ("log bytes per warm request", &|m| m.log_bytes, "B", 0),
    ];
    for (c, setting) in r.settings.iter().enumerate() {
        println!("\n{}\n", setting.condition.label());
        println!("| metric | {} |", r.subjects.iter().map(|s| s.name).collect::<Vec<_>>().join(" | "));
        println!("|---{}|", "|---".repeat(r.subjects.len()));
        let billed = setting.condition != Condition::FullCpu; // full CPU has no memory size to bill
        for (name, f, unit, digits) in rows.iter().filter(|row| billed || !row.0.starts_with("GB-ms")) {
            let cells: Vec<String> = (0..r.subjects.len()).map(|s| spread(&r.values(c, s, f), unit, *digits)).collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
    let ([function, hello, floor], [jwt, pat, floor_trips]) = (r.bins.each_ref().map(|b| size(b)), r.trips);
    println!(
        "\nstripped binary: function {function:.2} MiB, hello {hello:.2} MiB, DeleteItem floor {floor:.2} MiB; \
         sequential DynamoDB round trips: JWT {jwt}, PAT {pat}, floor {floor_trips}"
    );
    let [key_sets, during, configurations] = r.asked;
    println!(
        "identity provider: {key_sets} key-set fetch(es) by the instance that filled the shared cache, {during} by \
         every instance after it; {configurations} OpenID configuration read(s) in all"
    );
    let (a, [asked_cache, asked_provider]) = (&r.after, r.after.asked);
    let ms_spread = |values: &[Duration]| spread(&values.iter().map(|d| ms(*d)).collect::<Vec<_>>(), "ms", 1);
    let (warm, from_cache, from_provider) = (ms_spread(&a.warm), ms_spread(&a.first[0]), ms_spread(&a.first[1]));
    println!(
        "\nfirst request after the key set's lifetime at 256 MB, JWT by discovery, {} instances: warm {warm}; \
         another instance had refreshed (one cache read) {from_cache}, the provider asked {asked_cache} time(s); none \
         had (the provider's configuration and key set, the cache write) {from_provider}, the provider asked \
         {asked_provider} time(s)",
        a.warm.len()
    );
    println!("log bytes per refused request (its request line, reason and credential's values): {:.0} B", r.refused);
    recommend_memory(r);
    judge(r);
}

fn size(bin: &Path) -> f64 {
    std::fs::metadata(bin).map(|m| m.len() as f64 / 1048576.0).unwrap_or(0.0)
}

/// The memory size to deploy: the cheapest of those within 10% of the best JWT warm p50.
fn recommend_memory(r: &Report) {
    let p50_of = |mb| mid(&r.values(r.lambda(mb), JWT, &|m| ms(m.p50)));
    let cost_of = |mb| mid(&r.values(r.lambda(mb), JWT, &|m| m.billed));
    let best = MEMORY_SIZES.iter().map(|&mb| p50_of(mb)).fold(f64::INFINITY, f64::min);
    let near_best = MEMORY_SIZES.into_iter().filter(|&mb| p50_of(mb) <= best * 1.1);
    let recommended = near_best.min_by(|&a, &b| cost_of(a).total_cmp(&cost_of(b))).unwrap();
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).unwrap();
    let deployed = template.lines().find_map(|l| l.trim().strip_prefix("MemorySize:")).map(str::trim).unwrap_or("?");
    println!(
        "\nrecommended MemorySize: {recommended} MB (the cheapest JWT warm request within 10% of the best p50: {}); \
         template.yaml has {deployed}",
        MEMORY_SIZES.map(|mb| format!("{mb} MB {:.2} ms, {:.3} GB-ms", p50_of(mb), cost_of(mb))).join("; ")
    );
}

/// The budgets, on the median run; exits 1 when one is missed.
fn judge(r: &Report) {
    let jitter_x86 = jitter_entropy_in(&target_dir().join("release/build"));
    let jitter_arm = jitter_entropy_in(&target_dir().join("aarch64-unknown-linux-gnu/release/build"));
    let built = |jitter: Option<bool>| jitter.map_or("not built", |j| if j { "PRESENT" } else { "absent" });
    let (x86, arm) = (built(jitter_x86), built(jitter_arm));
    println!("CPU-jitter entropy in AWS-LC: release build {x86}, arm64 build (make build, sam build) {arm}");
    let jitter = f64::from(u8::from(jitter_x86.unwrap_or(true) || jitter_arm == Some(true)));
    let cold = |mb, s| r.values(r.lambda(mb), s, &|m| ms(m.cold()));
    let ratio = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(a, b)| a / b).collect::<Vec<f64>>();
    let minus = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(a, b)| a - b).collect::<Vec<f64>>();
    // CPU against the floor turn by turn: each turn of a subject ran in the
    // same round as the floor's, so the VM's mood of that moment falls on
    // both. A budget takes the median over every turn of every run, and of
    // both subjects that run the same warm path (inline keys and discovery):
    // no one subject's or run's bad stretch decides it.
    let turns = |s: usize| r.results.iter().flat_map(move |run| run[0][s].cpu_turns.iter().map(Duration::as_secs_f64));
    let paired = |s: usize| -> Vec<f64> { turns(s).zip(turns(FLOOR)).map(|(a, b)| a / b).collect() };
    let both = |a: usize, b: usize| -> Vec<f64> { paired(a).into_iter().chain(paired(b)).collect() };
    let p50_256 = |s| r.values(r.lambda(256), s, &|m| ms(m.p50));
    // Every run's and condition's peak RSS of the function's subjects.
    let rss = r.results.iter().flatten().flat_map(|run| &run[JWT..=PAT_OIDC]);
    let rss = rss.map(|m| m.rss_kib as f64 / 1024.0).fold(0.0, f64::max);
    let (jwt_cpu, pat_cpu) = (vec![mid(&both(JWT, JWT_OIDC))], vec![mid(&both(PAT, PAT_OIDC))]);
    let budgets: Vec<(&str, Vec<f64>, f64)> = vec![
        ("JWT cold start at 128 MB (ms)", cold(128, JWT), 45.0),
        ("JWT cold start at 256 MB (ms)", cold(256, JWT), 35.0),
        ("PAT cold start at 128 MB (ms)", cold(128, PAT), 60.0),
        ("PAT cold start at 128 MB, rate limit on (ms)", cold(128, PAT_LIMITED), 60.0),
        ("JWT cold start at 128 MB, discovery − inline keys (ms)", minus(cold(128, JWT_OIDC), cold(128, JWT)), 6.0),
        ("PAT cold start at 128 MB, discovery − inline keys (ms)", minus(cold(128, PAT_OIDC), cold(128, PAT)), 6.0),
        ("key-set fetches from the provider while the cache is fresh", vec![(r.asked[0] + r.asked[1]) as f64], 1.0),
        ("JWT warm p50 at 256 MB ÷ DeleteItem floor's", ratio(p50_256(JWT), p50_256(FLOOR)), 2.5),
        ("JWT CPU per warm invocation ÷ DeleteItem floor's, turn by turn (full CPU)", jwt_cpu, 2.2),
        ("PAT CPU per warm invocation ÷ DeleteItem floor's, turn by turn (full CPU)", pat_cpu, 3.5),
        ("PAT CPU, rate limit on ÷ DeleteItem floor's, turn by turn (full CPU)", vec![mid(&paired(PAT_LIMITED))], 3.5),
        (
            "provider requests by a first request after the lifetime, when another instance had refreshed",
            vec![r.after.asked[0] as f64],
            0.0,
        ),
        ("peak RSS (MiB)", vec![rss], 16.0),
        ("stripped binary (MiB)", vec![size(&r.bins[0])], 10.0),
        ("JWT self-delete, sequential round trips", vec![r.trips[0] as f64], 2.0),
        ("CPU-jitter entropy compiled in (0 = no)", vec![jitter], 0.0),
    ];
    println!("\n| budget (the median run; CPU, every turn of every run) | measured, median (min–max) | limit | |\n|---|---|---|---|");
    let mut failed = 0;
    for (name, measured, limit) in budgets {
        let ok = mid(&measured) <= limit;
        failed += usize::from(!ok);
        println!("| {name} | {} | {limit} | {} |", spread(&measured, "", 2), if ok { "pass" } else { "FAIL" });
    }
    if !r.throttled {
        println!("\nthe CPU share was not enforced: the Lambda conditions' figures are optimistic");
    }
    if failed > 0 {
        eprintln!("\n{failed} budget(s) missed");
        std::process::exit(1);
    }
}
