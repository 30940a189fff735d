//! Network seats: `licet seat query`, `licet seat hold` (a seat held with heartbeats while the
//! command runs), and `licet borrow` (a seat taken offline until a date) with `licet borrow
//! return`.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::args::{server_url, ClientArgs, ConnectionArgs, ServerArgs};
use super::output::{decided, emit, online_outcome};
use super::{usage_error, CliError, Outcome};
use crate::client::{SeatHold, SeatHolder, SeatLoss};

/// The seat commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SeatCommand {
    /// Show what a license server serves: its network licenses with their seats.
    Query {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check out a seat and hold it with heartbeats until standard input closes or the process is
    /// interrupted (Ctrl-C), terminated or hung up, then release it. A seat the license server
    /// released (or let lapse) ends the hold with its denial.
    Hold {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// The network license key.
        #[arg(long)]
        key: String,
        /// The edition to run.
        #[arg(long)]
        edition: String,
    },
}

/// `licet borrow ...`: a borrow, or `borrow return` (never both).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct BorrowArgs {
    #[command(subcommand)]
    action: Option<BorrowCommand>,
    #[command(flatten)]
    client: Option<ClientArgs>,
    /// The license server: `https://host:port`, `http://host:port`, or `host:port` (its
    /// address and license port: HTTPS, or plain HTTP on loopback).
    #[arg(long = "server", value_name = "URL", value_parser = server_url, required = true)]
    url: Option<String>,
    /// The network license key.
    #[arg(long, required = true)]
    key: Option<String>,
    /// The edition to run.
    #[arg(long, required = true)]
    edition: Option<String>,
    /// When the borrow ends (`YYYY-MM-DD`, at 00:00 UTC); the seat then comes back by itself.
    #[arg(long, value_name = "YYYY-MM-DD", required = true)]
    until: Option<chrono::NaiveDate>,
}

/// `licet borrow return`.
#[derive(Debug, clap::Subcommand)]
enum BorrowCommand {
    /// Return the borrowed seat to the license server early.
    Return {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs a seat command.
pub(crate) fn run_seat(
    connection: &ConnectionArgs,
    command: SeatCommand,
) -> Result<Outcome, CliError> {
    match command {
        SeatCommand::Query { server, json } => {
            // The query names no product: it lists every license the server serves.
            let query = connection.connect(&server.url, "")?.query_seats()?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&query)?));
            } else {
                emit(&query.to_table());
            }
            Ok(Outcome::Allowed)
        }
        SeatCommand::Hold {
            client,
            server,
            key,
            edition,
        } => hold(connection, &client, &server, &key, &edition),
    }
}

/// Runs `licet borrow` or `licet borrow return`.
pub(crate) fn run_borrow(
    connection: &ConnectionArgs,
    args: BorrowArgs,
) -> Result<Outcome, CliError> {
    match args {
        BorrowArgs {
            action: Some(BorrowCommand::Return { client, server }),
            ..
        } => {
            let client = client.open()?;
            let mut transport = connection.transport(&client, &server.url)?;
            decided(client.return_borrowed(&mut transport, chrono::Utc::now()))
        }
        BorrowArgs {
            action: None,
            client: Some(client),
            url: Some(url),
            key: Some(key),
            edition: Some(edition),
            until: Some(until),
        } => {
            let client = client.open()?;
            let mut transport = connection.transport(&client, &url)?;
            let until = until.and_time(chrono::NaiveTime::MIN).and_utc();
            decided(client.borrow(&mut transport, &key, &edition, until, chrono::Utc::now()))
        }
        // The required arguments make clap refuse any other combination.
        BorrowArgs { .. } => Err(usage_error(
            "pass --server URL --key K --edition E --until YYYY-MM-DD, or `borrow return`",
        )),
    }
}

/// Holds a seat until standard input closes, a stop signal comes or the server drops it.
fn hold(
    connection: &ConnectionArgs,
    client: &ClientArgs,
    server: &ServerArgs,
    key: &str,
    edition: &str,
) -> Result<Outcome, CliError> {
    let client = Arc::new(client.open()?);
    let transport = Box::new(connection.transport(&client, &server.url)?);
    let holder = match SeatHolder::checkout(client, transport, key, edition) {
        Ok(SeatHold::Held(holder)) => holder,
        Ok(SeatHold::Denied(decision)) => return Ok(online_outcome(&decision)),
        Err(error) => return decided(Err(error)),
    };
    let (ended, end) = std::sync::mpsc::channel();
    let lost = ended.clone();
    holder.on_loss(move |loss| {
        let _ = lost.send(EndOfHold::Lost(loss.clone()));
    });
    // The stop signals are caught before the grant is printed: whoever reads it may stop the
    // hold at once, and the seat is still released.
    watch_end_of_hold(ended)?;
    online_outcome(holder.decision());
    match end.recv().map_err(|_| CliError::WatchEnded)? {
        EndOfHold::Stopped(stop) => {
            eprintln!("{stop}: releasing the seat");
            decided(holder.release())
        }
        EndOfHold::Lost(loss) => {
            emit(&format!(
                "{}: the seat of session {} was released by the license server: {}\n",
                loss.decision.code, loss.session, loss.decision.message
            ));
            Ok(Outcome::Denied)
        }
    }
}

/// What ended `licet seat hold`.
enum EndOfHold {
    /// Standard input closed or a stop signal came (which one).
    Stopped(&'static str),
    /// The license server no longer holds the seat.
    Lost(SeatLoss),
}

/// Sends on `stopped` when standard input reaches its end or the process gets SIGINT (Ctrl-C),
/// SIGTERM or SIGHUP, saying which. The signals are caught from here on, so the seat they end is
/// released before the process exits.
fn watch_end_of_hold(stopped: Sender<EndOfHold>) -> Result<(), CliError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    let watch = |what| move |source| CliError::Watch { what, source };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(watch("catch the stop signals"))?;
    let on_signal = stopped.clone();
    std::thread::Builder::new()
        .name("licet-signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = match signal {
                    SIGINT => "interrupted",
                    SIGTERM => "terminated",
                    _ => "hung up",
                };
                let _ = on_signal.send(EndOfHold::Stopped(name));
            }
        })
        .map_err(watch("start the signal thread"))?;
    std::thread::Builder::new()
        .name("licet-stdin".to_owned())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stopped.send(EndOfHold::Stopped("standard input closed"));
        })
        .map_err(watch("start the input thread"))?;
    Ok(())
}
