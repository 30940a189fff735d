//! Load generator for the server host, on loopback only, bounded in count and time.
//!
//! Starts the real API router in-process on 127.0.0.1 (SQLite in a temporary directory, or a
//! fresh schema on the PostgreSQL server `--database` names) and, in the same run, an axum server
//! answering a no-op JSON route; drives them with N concurrent keep-alive HTTP/1.1 clients.
//!
//! ```sh
//! # activations/s, checkout+release/s, latency percentiles and the ratio to the no-op baseline:
//! cargo run --release -p licet-benches --bin licet-loadgen -- [--clients 16] [--seconds 5] [--synchronous full|normal]
//! # checkout+release on pools already holding N seats (two replicas), each N with its ratio to the first:
//! cargo run --release -p licet-benches --bin licet-loadgen -- --held 0,1000,10000,100000
//! # validations of a serial with N returned serials and removals and N/10 activations:
//! cargo run --release -p licet-benches --bin licet-loadgen -- --history 0,1000,10000,100000
//! # the same on PostgreSQL:
//! cargo run --release -p licet-benches --bin licet-loadgen -- --database postgres://postgres@127.0.0.1:5432/test --held 0,100000
//! # any of these over HTTPS (a certificate made for the run; the baseline over TLS too):
//! cargo run --release -p licet-benches --bin licet-loadgen -- --tls
//! ```

mod held;
mod history;
mod phase;
mod servers;
mod tls;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use licet_server::store::Synchronous;
use serde_json::json;

use crate::phase::{report, run_phase, timed};
use crate::servers::{admin, machine, start_licet, start_noop, target, Backend};

type Failure = Box<dyn Error + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct Options {
    clients: usize,
    seconds: u64,
    synchronous: Synchronous,
}

/// What a run measures.
#[derive(Debug, Default)]
struct Run {
    /// Pool sizes of the `--held` table.
    held: Vec<usize>,
    /// History sizes of the `--history` table.
    history: Vec<usize>,
    /// A PostgreSQL connection string; SQLite when absent.
    database: Option<String>,
    /// Every server speaks HTTPS and every client connects over TLS.
    tls: bool,
}

/// The most seats `--held` fills one pool with, and the most returned serials `--history` puts
/// on one serial.
const MAX_ROWS: usize = 200_000;
/// How long filling one pool (or one serial's activations) may take at most.
const FILL_SECONDS: u64 = 600;

fn sizes(value: &str) -> Result<Vec<usize>, Failure> {
    value
        .split(',')
        .map(|count| Ok(count.trim().parse::<usize>()?.min(MAX_ROWS)))
        .collect()
}

fn options() -> Result<(Options, Run), Failure> {
    let mut run = Run::default();
    let mut options = Options {
        clients: 16,
        seconds: 5,
        synchronous: Synchronous::Full,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--tls" {
            run.tls = true;
            continue;
        }
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
            "--held" => run.held = sizes(&value)?,
            "--history" => run.history = sizes(&value)?,
            "--database"
                if value.starts_with("postgres://") || value.starts_with("postgresql://") =>
            {
                run.database = Some(value);
            }
            "--database" => {
                return Err("`--database` takes a postgres:// URL (SQLite is the default)".into())
            }
            other => return Err(format!("unknown option `{other}`").into()),
        }
    }
    Ok((options, run))
}

fn main() -> Result<(), Failure> {
    let (options, run) = options()?;
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
    let backend = servers.block_on(Backend::create(dir.path(), run.database.as_deref()))?;
    let tls = if run.tls {
        Some(tls::enable(dir.path())?)
    } else {
        None
    };
    let replicas = servers.block_on(start_licet(
        dir.path(),
        &backend,
        options.synchronous,
        2,
        tls.clone(),
    ))?;
    let noop = servers.block_on(start_noop(tls))?;
    let _guard = servers.enter();
    println!(
        "licet-loadgen: {} keep-alive clients, {} s per phase, {}{}{}",
        options.clients,
        options.seconds,
        backend.name(),
        match backend {
            Backend::Sqlite(_) => format!(" synchronous={:?}", options.synchronous),
            Backend::Postgres { .. } => String::new(),
        },
        if run.tls { ", over TLS" } else { "" }
    );
    let outcome = clients.block_on(async {
        if !run.held.is_empty() {
            held::held_table(options, &replicas, &run.held).await?;
        }
        if !run.history.is_empty() {
            history::history_table(options, &replicas, &backend, &run.history).await?;
        }
        match (
            run.held.is_empty() && run.history.is_empty(),
            replicas.first(),
        ) {
            (true, Some(licet)) => drive(options, *licet, noop).await,
            _ => Ok(()),
        }
    });
    let dropped = servers.block_on(backend.drop_schema());
    outcome.and(dropped)
}

/// The default run: activations, checkout+release pairs and the no-op baseline.
async fn drive(options: Options, licet: SocketAddr, noop: SocketAddr) -> Result<(), Failure> {
    let Options {
        clients, seconds, ..
    } = options;

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
        &[licet],
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
    let mut seats = run_phase(&[licet], clients, seconds, move |mut client, worker, _| {
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
    let mut baseline = run_phase(&[noop], clients, seconds, move |mut client, worker, _| {
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
