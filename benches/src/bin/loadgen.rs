//! Load generator for the server host, on loopback only, bounded in count and time.
//!
//! Starts the real API router in-process on 127.0.0.1 (SQLite in a temporary directory) and, in
//! the same run, an axum server answering a no-op JSON route; drives both with N concurrent
//! keep-alive HTTP/1.1 clients; prints activations/s, checkout+release/s, latency percentiles and
//! the ratio to the no-op baseline.
//!
//! ```sh
//! cargo run --release -p licet-benches --bin licet-loadgen -- [--clients 16] [--seconds 5] [--synchronous full|normal]
//! # checkout+release on pools already holding N seats, each N with its ratio to the first:
//! cargo run --release -p licet-benches --bin licet-loadgen -- --held 0,1000,10000,100000
//! ```

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use licet_server::config::Config;
use licet_server::dongle::NoDongle;
use licet_server::keys::{generate_key_files, token_hash};
use licet_server::loopback::LoopbackClient;
use licet_server::ratelimit::{Rate, RateLimits};
use licet_server::server::{build_state, serve};
use licet_server::store::Synchronous;
use serde_json::{json, Value};

type Failure = Box<dyn Error + Send + Sync>;

/// The most requests one phase sends, whatever the time.
const MAX_REQUESTS_PER_PHASE: usize = 400_000;
const ADMIN_TOKEN: &str = "lct_admin_loadgen";

#[derive(Debug, Clone, Copy)]
struct Options {
    clients: usize,
    seconds: u64,
    synchronous: Synchronous,
}

/// The most seats `--held` fills one pool with.
const MAX_HELD: usize = 200_000;
/// How long filling one pool may take at most.
const FILL_SECONDS: u64 = 600;

fn options() -> Result<(Options, Vec<usize>), Failure> {
    let mut held = Vec::new();
    let mut options = Options {
        clients: 16,
        seconds: 5,
        synchronous: Synchronous::Full,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("`{arg}` needs a value"))?;
        match arg.as_str() {
            "--clients" => options.clients = value.parse::<usize>()?.clamp(1, 256),
            "--seconds" => options.seconds = value.parse::<u64>()?.clamp(1, 60),
            "--synchronous" => {
                options.synchronous = match value.as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    other => return Err(format!("unknown synchronous `{other}`").into()),
                }
            }
            "--held" => {
                for count in value.split(',') {
                    held.push(count.trim().parse::<usize>()?.min(MAX_HELD));
                }
            }
            other => return Err(format!("unknown option `{other}`").into()),
        }
    }
    Ok((options, held))
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Phase {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&mut self, percentile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len() - 1;
        let index = ((last as f64) * percentile).round() as usize;
        f64::from(self.latencies_us[index.min(last)]) / 1000.0
    }
}

/// Runs `clients` workers for at most `seconds` (and at most [`MAX_REQUESTS_PER_PHASE`] requests).
/// Each worker calls `step(client, worker, iteration)` which sends one or more requests and
/// returns their count, or `None` when it has nothing left to do.
async fn run_phase<F, Fut>(
    address: SocketAddr,
    clients: usize,
    seconds: u64,
    step: F,
) -> Result<Phase, Failure>
where
    F: Fn(LoopbackClient, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (LoopbackClient, Option<(usize, usize, Vec<u32>)>)> + Send,
{
    let step = Arc::new(step);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let budget = MAX_REQUESTS_PER_PHASE / clients;
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..clients {
        let step = step.clone();
        workers.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let Ok(mut client) = LoopbackClient::connect(address).await else {
                phase.errors += 1;
                return phase;
            };
            let mut iteration = 0;
            while Instant::now() < deadline && phase.requests < budget {
                let (back, outcome) = step(client, worker, iteration).await;
                client = back;
                match outcome {
                    Some((requests, errors, latencies)) => {
                        phase.requests += requests;
                        phase.errors += errors;
                        phase.latencies_us.extend(latencies);
                    }
                    None => break,
                }
                iteration += 1;
            }
            phase
        }));
    }
    let mut total = Phase::default();
    for worker in workers {
        let phase = worker.await?;
        total.requests += phase.requests;
        total.errors += phase.errors;
        total.latencies_us.extend(phase.latencies_us);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn timed(client: &mut LoopbackClient, path: &str, body: &Value, expect: u16) -> (bool, u32) {
    let start = Instant::now();
    let ok =
        matches!(client.request("POST", path, None, Some(body)).await, Ok(r) if r.status == expect);
    let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
    (ok, micros)
}

fn machine(n: usize) -> Value {
    json!({ "machine-id": format!("id-{n}"), "mac": format!("mac-{n}"), "cpu": format!("cpu-{n}"), "disk": format!("disk-{n}") })
}

fn target() -> Value {
    json!({ "product": "gstarcad", "edition": "professional", "version": "2027" })
}

async fn admin(address: SocketAddr, path: &str, body: Value) -> Result<Value, Failure> {
    let mut client = LoopbackClient::connect(address).await?;
    let response = client
        .request("POST", path, Some(ADMIN_TOKEN), Some(&body))
        .await?;
    if response.status != 201 {
        return Err(format!(
            "{path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )
        .into());
    }
    Ok(response.json()?)
}

async fn start_licet(
    dir: &std::path::Path,
    synchronous: Synchronous,
) -> Result<SocketAddr, Failure> {
    generate_key_files(dir)?;
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/gstarcad.yaml");
    let generous = Rate {
        burst: 10_000_000,
        per_minute: 10_000_000,
    };
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database: format!("sqlite://{}", dir.join("licet.db").display()),
        policies: vec![policy],
        vendor_key: Some(dir.join("vendor.secret")),
        admin_tokens: vec![licet_server::config::AdminTokenConfig {
            name: "loadgen".into(),
            sha256: token_hash(ADMIN_TOKEN),
        }],
        sqlite_synchronous: synchronous,
        postgres_max_connections: 16,
        rate_limits: RateLimits {
            per_key: generous,
            per_address: generous,
            max_tracked: 1000,
        },
        dongle: None,
        sweep_seconds: 60,
        ..Config::default()
    };
    let state = build_state(&config, Arc::new(NoDongle)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve(
        listener,
        state,
        Duration::from_secs(60),
        std::future::pending(),
    ));
    Ok(address)
}

async fn start_noop() -> Result<SocketAddr, Failure> {
    async fn noop(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({ "verdict": "allow", "code": "NOOP", "echo": body["session"] }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = Router::new().route("/noop", post(noop));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

fn report(name: &str, unit: &str, per_unit: usize, phase: &mut Phase) -> f64 {
    let rate = phase.per_second() / per_unit as f64;
    let (p50, p99) = (phase.percentile_ms(0.50), phase.percentile_ms(0.99));
    println!(
        "{name:<18} {rate:>8.0} {unit}/s  ({:>6.0} requests/s, {} requests, {} errors)  p50 {p50:.2} ms  p99 {p99:.2} ms",
        phase.per_second(),
        phase.requests,
        phase.errors,
    );
    rate
}

fn main() -> Result<(), Failure> {
    let (options, held) = options()?;
    // The servers and the clients run on separate runtimes (two worker threads each) that share
    // the machine's cores, the same way for the licet server and for the no-op baseline.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let licet = servers.block_on(start_licet(dir.path(), options.synchronous))?;
    let noop = servers.block_on(start_noop())?;
    let _guard = servers.enter();
    if held.is_empty() {
        clients.block_on(drive(options, licet, noop))
    } else {
        clients.block_on(held_table(options, licet, &held))
    }
}

/// For each count of `held` seats: a fresh pool filled with that many held seats (timed), then
/// checkout+release pairs by the clients on their own sessions; a table with each row's ratio to
/// the first.
async fn held_table(options: Options, licet: SocketAddr, held: &[usize]) -> Result<(), Failure> {
    let Options {
        clients, seconds, ..
    } = options;
    println!("licet-loadgen: checkout+release on pools already holding seats; {clients} keep-alive clients, {seconds} s per row, SQLite synchronous={:?}", options.synchronous);
    println!("| seats held | fill (seats/s) | pairs/s | pair p50 | pair p99 | pairs/s vs first |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut first: Option<f64> = None;
    for &count in held {
        let pool = admin(
            licet,
            "/v1/admin/licenses",
            json!({
                "product": "gstarcad", "license_type": "network-key", "edition": "professional",
                "seats": count + clients
            }),
        )
        .await?;
        let key = Arc::new(
            pool["licenses"][0]["key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        let per_client = count.div_ceil(clients);
        let fill_key = key.clone();
        let fill = run_phase(licet, clients, FILL_SECONDS, move |mut client, worker, iteration| {
            let key = fill_key.clone();
            async move {
                let index = worker * per_client + iteration;
                if iteration >= per_client || index >= count {
                    return (client, None);
                }
                let body = json!({ "key": *key, "target": target(), "machine": machine(1_000_000 + index),
                                   "session": format!("held-{index}") });
                let (ok, micros) = timed(&mut client, "/v1/seats/checkout", &body, 200).await;
                (client, Some((1, usize::from(!ok), vec![micros])))
            }
        })
        .await?;
        if fill.errors > 0 || fill.requests < count {
            return Err(format!(
                "filling {count} seats: {} granted of {} sent in {:.0} s",
                fill.requests - fill.errors,
                fill.requests,
                fill.elapsed.as_secs_f64()
            )
            .into());
        }
        let pair_key = key.clone();
        let mut pairs = run_phase(licet, clients, seconds, move |mut client, worker, _| {
            let key = pair_key.clone();
            async move {
                let session = format!("session-{worker}");
                let checkout = json!({ "key": *key, "target": target(), "machine": machine(worker), "session": session });
                let release = json!({ "key": *key, "session": session });
                let (a_ok, a) = timed(&mut client, "/v1/seats/checkout", &checkout, 200).await;
                let (b_ok, b) = timed(&mut client, "/v1/seats/release", &release, 200).await;
                (client, Some((2, usize::from(!a_ok) + usize::from(!b_ok), vec![a + b])))
            }
        })
        .await?;
        let rate = pairs.per_second() / 2.0;
        let baseline = *first.get_or_insert(rate);
        let fill_rate = if count == 0 { 0.0 } else { fill.per_second() };
        println!(
            "| {count} | {fill_rate:.0} | {rate:.0} | {:.2} ms | {:.2} ms | {:.2} |{}",
            pairs.percentile_ms(0.50),
            pairs.percentile_ms(0.99),
            rate / baseline.max(1e-9),
            if pairs.errors > 0 {
                format!(" {} errors", pairs.errors)
            } else {
                String::new()
            },
        );
    }
    Ok(())
}

async fn drive(options: Options, licet: SocketAddr, noop: SocketAddr) -> Result<(), Failure> {
    let Options {
        clients, seconds, ..
    } = options;
    println!("licet-loadgen: {clients} keep-alive clients, {seconds} s per phase, SQLite synchronous={:?}", options.synchronous);

    // Activations: each client activates its own slice of fresh standalone keys.
    let keys_needed = 40_000usize;
    let mut keys = Vec::with_capacity(keys_needed);
    while keys.len() < keys_needed {
        let issued = admin(licet, "/v1/admin/licenses", json!({
            "product": "gstarcad", "license_type": "standalone-key", "edition": "professional", "count": 1000
        })).await?;
        for license in issued["licenses"].as_array().into_iter().flatten() {
            if let Some(key) = license["key"].as_str() {
                keys.push(key.to_owned());
            }
        }
    }
    let keys = Arc::new(keys);
    let per_client = keys_needed / clients;
    let activation_keys = keys.clone();
    let mut activations = run_phase(
        licet,
        clients,
        seconds,
        move |mut client, worker, iteration| {
            let keys = activation_keys.clone();
            async move {
                if iteration >= per_client {
                    return (client, None);
                }
                let index = worker * per_client + iteration;
                let body =
                    json!({ "key": keys[index], "target": target(), "machine": machine(index) });
                let (ok, micros) = timed(&mut client, "/v1/activate", &body, 200).await;
                (client, Some((1, usize::from(!ok), vec![micros])))
            }
        },
    )
    .await?;

    // Checkout + release: every client holds its own session on one pool with a seat each.
    let pool = admin(licet, "/v1/admin/licenses", json!({
        "product": "gstarcad", "license_type": "network-key", "edition": "professional", "seats": clients
    })).await?;
    let pool_key = pool["licenses"][0]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let seat_key = pool_key.clone();
    let mut seats = run_phase(licet, clients, seconds, move |mut client, worker, _| {
        let key = seat_key.clone();
        async move {
            let session = format!("session-{worker}");
            let checkout = json!({ "key": key, "target": target(), "machine": machine(worker), "session": session });
            let release = json!({ "key": key, "session": session });
            let (first, a) = timed(&mut client, "/v1/seats/checkout", &checkout, 200).await;
            let (second, b) = timed(&mut client, "/v1/seats/release", &release, 200).await;
            (client, Some((2, usize::from(!first) + usize::from(!second), vec![a, b])))
        }
    })
    .await?;

    // The no-op baseline: the same clients, the same body size, a route that does nothing.
    let noop_key = pool_key;
    let mut baseline = run_phase(noop, clients, seconds, move |mut client, worker, _| {
        let key = noop_key.clone();
        async move {
            let body = json!({ "key": key, "target": target(), "machine": machine(worker), "session": format!("session-{worker}") });
            let (ok, micros) = timed(&mut client, "/noop", &body, 200).await;
            (client, Some((1, usize::from(!ok), vec![micros])))
        }
    })
    .await?;

    let activation_rate = report("activations", "activations", 1, &mut activations);
    let pair_rate = report("checkout+release", "pairs", 2, &mut seats);
    let baseline_rate = report("no-op baseline", "requests", 1, &mut baseline);
    println!(
        "ratio to the no-op baseline (requests/s): activations {:.2}, checkout+release {:.2}",
        activation_rate / baseline_rate.max(1e-9),
        seats.per_second() / baseline_rate.max(1e-9),
    );
    println!(
        "targets: checkout+release >= 2000 pairs/s: {}; p99 < 20 ms: {}; >= 0.5 of the baseline: {}",
        if pair_rate >= 2000.0 { "met" } else { "missed" },
        if seats.percentile_ms(0.99) < 20.0 { "met" } else { "missed" },
        if seats.per_second() >= 0.5 * baseline_rate { "met" } else { "missed" },
    );
    Ok(())
}
