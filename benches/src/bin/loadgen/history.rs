//! `--history`: validations of one volume serial that has N returned certificate serials and as
//! many removals on record, and N/10 activations (at most 10,000), against a fresh serial.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::phase::{run_phase, timed};
use crate::servers::{issue, machine, Backend, VOLUME_PRODUCT};
use crate::{Failure, Options, FILL_SECONDS};

/// The most activations a history row puts on its serial.
const MAX_ACTIVATIONS: usize = 10_000;

fn viewer() -> Value {
    json!({ "product": VOLUME_PRODUCT, "edition": "standard", "version": "3" })
}

/// For each size in `history`: a fresh serial, its activations made through the API (timed),
/// its returned serials and removals put in the database, then every client validating its own
/// activated machine; a table with each row's ratio to the first.
pub async fn history_table(
    options: Options,
    replicas: &[SocketAddr],
    backend: &Backend,
    history: &[usize],
) -> Result<(), Failure> {
    let Options {
        clients, seconds, ..
    } = options;
    let first_replica = *replicas.first().ok_or("no server")?;
    println!("| returned serials and removals | activations | validations/s | p50 | p99 | validations/s vs first |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut first: Option<f64> = None;
    for &returned in history {
        let key = Arc::new(
            issue(
                first_replica,
                json!({ "product": VOLUME_PRODUCT, "license_type": "serial", "edition": "standard" }),
            )
            .await?,
        );
        // The clients' own machines are activated last, after the bulk.
        let activations = (returned / 10).min(MAX_ACTIVATIONS) + clients;
        let per_client = activations.div_ceil(clients);
        let fill_key = key.clone();
        let fill = run_phase(replicas, clients, FILL_SECONDS, move |mut client, worker, iteration| {
            let key = fill_key.clone();
            async move {
                // Worker w activates machines w, w + clients, ...: its last one is its own.
                let index = iteration * clients + worker;
                if iteration >= per_client || index >= activations {
                    return (client, None);
                }
                let body = json!({ "key": *key, "target": viewer(), "machine": machine(activations - 1 - index) });
                let (ok, micros) = timed(&mut client, "/v1/activate", &body, 200).await;
                (client, Some((1, usize::from(!ok), vec![micros])))
            }
        })
        .await?;
        if fill.errors > 0 {
            return Err(format!(
                "activating {activations} machines: {} of {} failed",
                fill.errors, fill.requests
            )
            .into());
        }
        if returned > 0 {
            backend.seed_history(&key, returned).await?;
        }
        let validate_key = key.clone();
        let mut validations =
            run_phase(replicas, clients, seconds, move |mut client, worker, _| {
                let key = validate_key.clone();
                async move {
                    // A serial that was not returned: the request looks it up among the returned ones.
                    let body = json!({ "key": *key, "machine": machine(worker),
                                   "certificate_serial": format!("held-by-{worker}") });
                    let (ok, micros) = timed(&mut client, "/v1/validate", &body, 200).await;
                    (client, Some((1, usize::from(!ok), vec![micros])))
                }
            })
            .await?;
        let rate = validations.per_second();
        let baseline = *first.get_or_insert(rate);
        println!(
            "| {returned} | {activations} | {rate:.0} | {:.2} ms | {:.2} ms | {:.2} |{}",
            validations.percentile_ms(0.50),
            validations.percentile_ms(0.99),
            rate / baseline.max(1e-9),
            if validations.errors > 0 {
                format!(" {} errors", validations.errors)
            } else {
                String::new()
            },
        );
    }
    Ok(())
}
