//! One measured phase: N keep-alive clients on loopback, bounded in requests and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use licet_server::loopback::LoopbackClient;
use serde_json::Value;

use crate::Failure;

/// The most requests one phase sends, whatever the time.
const MAX_REQUESTS_PER_PHASE: usize = 400_000;

/// What one phase measured.
#[derive(Debug, Default)]
pub struct Phase {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&mut self, percentile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len() - 1;
        let index = ((last as f64) * percentile).round() as usize;
        f64::from(self.latencies_us[index.min(last)]) / 1000.0
    }
}

/// Runs `clients` workers for at most `seconds` (and at most [`MAX_REQUESTS_PER_PHASE`] requests),
/// worker `w` on `addresses[w % len]`.
/// Each worker calls `step(client, worker, iteration)` which sends one or more requests and
/// returns their count, or `None` when it has nothing left to do.
pub async fn run_phase<F, Fut>(
    addresses: &[SocketAddr],
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
    if addresses.is_empty() {
        return Err("a phase needs a server".into());
    }
    for worker in 0..clients {
        let step = step.clone();
        let address = addresses[worker % addresses.len()];
        workers.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let Ok(mut client) = crate::tls::connect(address).await else {
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

pub async fn timed(
    client: &mut LoopbackClient,
    path: &str,
    body: &Value,
    expect: u16,
) -> (bool, u32) {
    let start = Instant::now();
    let ok =
        matches!(client.request("POST", path, None, Some(body)).await, Ok(r) if r.status == expect);
    let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
    (ok, micros)
}

/// Prints one phase's rate per `unit` (`per_unit` requests each) and latencies.
pub fn report(name: &str, unit: &str, per_unit: usize, phase: &mut Phase) -> f64 {
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
