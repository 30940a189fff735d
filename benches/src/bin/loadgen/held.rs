//! `--held`: checkout+release pairs on pools already holding N seats, and the seat race on two
//! replicas at that size.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;

use crate::phase::{run_phase, timed};
use crate::servers::{issue, machine, target};
use crate::{Failure, Options, FILL_SECONDS};

/// For each count of `held` seats: a fresh pool filled with that many held seats through both
/// replicas (timed), then checkout+release pairs by the clients on their own sessions, then twice
/// as many racing sessions as free seats split over the replicas, of which exactly the free
/// seats must be granted; a table with each row's ratio to the first.
pub async fn held_table(
    options: Options,
    replicas: &[SocketAddr],
    held: &[usize],
) -> Result<(), Failure> {
    let Options {
        clients, seconds, ..
    } = options;
    let [first_replica, second_replica] = replicas else {
        return Err("the held table needs two replicas".into());
    };
    let (first_replica, second_replica) = (*first_replica, *second_replica);
    println!("| seats held | fill (seats/s) | pairs/s | pair p50 | pair p99 | pairs/s vs first | race on 2 replicas (granted/free) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut first: Option<f64> = None;
    for &count in held {
        let key = Arc::new(
            issue(
                first_replica,
                json!({
                    "product": "gstarcad", "license_type": "network-key", "edition": "professional",
                    "seats": count + clients
                }),
            )
            .await?,
        );
        let per_client = count.div_ceil(clients);
        let fill_key = key.clone();
        let fill = run_phase(replicas, clients, FILL_SECONDS, move |mut client, worker, iteration| {
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
        let mut pairs = run_phase(replicas, clients, seconds, move |mut client, worker, _| {
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
        let granted = race(&key, clients, first_replica, second_replica).await?;
        let rate = pairs.per_second() / 2.0;
        let baseline = *first.get_or_insert(rate);
        let fill_rate = if count == 0 { 0.0 } else { fill.per_second() };
        println!(
            "| {count} | {fill_rate:.0} | {rate:.0} | {:.2} ms | {:.2} ms | {:.2} | {granted}/{clients}{} |{}",
            pairs.percentile_ms(0.50),
            pairs.percentile_ms(0.99),
            rate / baseline.max(1e-9),
            if granted == clients { "" } else { " WRONG" },
            if pairs.errors > 0 {
                format!(" {} errors", pairs.errors)
            } else {
                String::new()
            },
        );
        if granted != clients {
            return Err(format!("the race granted {granted} of {clients} free seats").into());
        }
    }
    Ok(())
}

/// Twice `free` new sessions check out at once, alternating between the replicas; how many got
/// a seat (every other answer must be `SEATS_EXHAUSTED`).
async fn race(
    key: &str,
    free: usize,
    first: SocketAddr,
    second: SocketAddr,
) -> Result<usize, Failure> {
    let mut tasks = Vec::new();
    for n in 0..2 * free {
        let address = if n % 2 == 0 { first } else { second };
        let body = json!({ "key": key, "target": target(), "machine": machine(2_000_000 + n),
                           "session": format!("race-{n}") });
        tasks.push(tokio::spawn(async move {
            let mut client = crate::tls::connect(address).await?;
            let response = client
                .request("POST", "/v1/seats/checkout", None, Some(&body))
                .await?;
            Ok::<_, std::io::Error>(response)
        }));
    }
    let mut granted = 0;
    for task in tasks {
        let response = task.await??;
        match response.status {
            200 => granted += 1,
            409 if String::from_utf8_lossy(&response.body).contains("SEATS_EXHAUSTED") => {}
            other => {
                return Err(format!(
                    "a racing checkout answered {other}: {}",
                    String::from_utf8_lossy(&response.body)
                )
                .into())
            }
        }
    }
    Ok(granted)
}
