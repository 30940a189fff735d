//! `licet-server admin ...`: every operation of the administrator API (`/v1/admin/...`) of a
//! running server, from the command line.
//!
//! Each command is one request to the server over HTTP ([`AdminClient`]); the answer prints as a
//! table ([`super::table`]) or, with `--json`, as the API's JSON. A refusal prints as
//! `CODE: message` on standard error. Exit statuses: 0 done, 1 refused by the server
//! ([`EXIT_REFUSED`](super::client::EXIT_REFUSED)), 2 wrong command line or no usable token
//! ([`EXIT_USAGE`](super::client::EXIT_USAGE)), 3 the server cannot be reached or is not a Licet
//! server ([`EXIT_UNREACHABLE`](super::client::EXIT_UNREACHABLE)).

use licet_engine::report::Report as _;
use std::io::{BufRead as _, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::client::{path, with_query, AdminClient, AdminError, AdminToken, Answer, TOKEN_ENV};
use super::commands::{
    AdminArgs, AdminCommand, ClientsCommand, IssueArgs, LicensesCommand, OrdersCommand,
    SeatsCommand, SerialsCommand, TermArg, TokensCommand,
};
use super::table;

/// Runs `admin ...`: prints the answer on standard output, or the error on standard error, and
/// returns the process exit status.
pub fn run(args: &AdminArgs) -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(args, std::env::var(TOKEN_ENV).ok(), &mut out) {
        Ok(()) => 0,
        Err(AdminError::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            let _ = out.flush();
            match &error {
                AdminError::Refused { .. } => eprintln!("{}", error.report()),
                _ => eprintln!("error: {}", error.report()),
            }
            error.exit_code()
        }
    }
}

/// Runs `admin ...` with the token of `token_env` (the value of `LICET_ADMIN_TOKEN`) unless
/// `--token-file` is given, writing the answer to `out`.
pub fn execute(
    args: &AdminArgs,
    token_env: Option<String>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if args.token.is_some() {
        return Err(AdminError::TokenOnCommandLine);
    }
    // What the command sends is checked before the token is looked for.
    let request = request(&args.command)?;
    let token = AdminToken::locate(args.token_file.as_deref(), token_env)?;
    let mut client = AdminClient::new(&args.server, token)?
        .with_timeout(std::time::Duration::from_secs(args.timeout));
    if args.allow_plain_http {
        client = client.allow_plain_http();
    }
    if let Some(path) = &args.server_certificate {
        client = client.with_server_certificate(path)?;
    }
    let answer = client.call(request.method, &request.path, request.body.as_ref())?;
    if args.json {
        writeln!(out, "{}", table::pretty_json(&answer.raw))?;
        return Ok(());
    }
    let shown = (request.show)(&answer.json);
    writeln!(out, "{shown}")?;
    if let Some(hint) = next_page_hint(request.paged, &answer) {
        eprintln!("{hint}");
    }
    Ok(())
}

/// One request of a command and how its answer reads.
struct Request {
    method: &'static str,
    path: String,
    body: Option<Value>,
    show: fn(&Value) -> String,
    /// Whether the answer is a page of a listing (its next page is named on standard error).
    paged: bool,
}

impl Request {
    fn get(path: String, show: fn(&Value) -> String) -> Request {
        Request {
            method: "GET",
            path,
            body: None,
            show,
            paged: false,
        }
    }

    fn send(
        method: &'static str,
        path: String,
        body: Option<Value>,
        show: fn(&Value) -> String,
    ) -> Request {
        Request {
            method,
            path,
            body,
            show,
            paged: false,
        }
    }
}

/// Where the next page of a listing starts, when the server named one (`Licet-Next`).
fn next_page_hint(paged: bool, answer: &Answer) -> Option<String> {
    let next = answer.next.as_deref().filter(|_| paged)?;
    let shown = answer.json.as_array().map_or(0, Vec::len);
    Some(format!("{shown} shown; the next page: --after {next}"))
}

/// A page of a listing: `path` with its filters and `--after`/`--limit`.
fn page(
    path: &str,
    filters: &[(&str, Option<String>)],
    after: Option<String>,
    limit: Option<i64>,
    show: fn(&Value) -> String,
) -> Request {
    let mut query = filters.to_vec();
    query.push(("after", after));
    query.push(("limit", limit.map(|limit| limit.to_string())));
    Request {
        paged: true,
        ..Request::get(with_query(path, &query), show)
    }
}

fn admin(segments: &[&str]) -> String {
    let mut all = vec!["v1", "admin"];
    all.extend_from_slice(segments);
    path(&all)
}

fn request(command: &AdminCommand) -> Result<Request, AdminError> {
    Ok(match command {
        AdminCommand::Products => Request::get(admin(&["products"]), table::products),
        AdminCommand::Tokens(TokensCommand::Create { name }) => Request::send(
            "POST",
            admin(&["tokens"]),
            Some(json!({ "name": name })),
            show_admin_token,
        ),
        AdminCommand::Clients(command) => clients(command)?,
        AdminCommand::Orders(command) => orders(command)?,
        AdminCommand::Licenses(command) => licenses(command)?,
        AdminCommand::Serials(SerialsCommand::Issue { issue }) => Request::send(
            "POST",
            admin(&["serials"]),
            Some(issue_body(issue, None, None)?),
            show_issued,
        ),
        AdminCommand::Seats(SeatsCommand::List {
            product,
            license,
            after,
            limit,
        }) => match license {
            Some(key) => page(
                &admin(&["licenses", key, "seats"]),
                &[],
                after.clone(),
                *limit,
                table::seats,
            ),
            None => page(
                &admin(&["seats"]),
                &[("product", product.clone())],
                after.clone(),
                *limit,
                table::seats,
            ),
        },
        AdminCommand::Audit {
            license,
            after,
            limit,
        } => page(
            &admin(&["audit"]),
            &[("license", license.clone())],
            after.map(|after| after.to_string()),
            *limit,
            table::audit,
        ),
    })
}

fn clients(command: &ClientsCommand) -> Result<Request, AdminError> {
    Ok(match command {
        ClientsCommand::List { after, limit } => page(
            &admin(&["clients"]),
            &[],
            after.clone(),
            *limit,
            table::clients,
        ),
        ClientsCommand::Show { id } => Request::get(admin(&["clients", id]), table::client),
        ClientsCommand::Create { id, name } => Request::send(
            "POST",
            admin(&["clients"]),
            Some(json!({ "id": id, "name": name })),
            show_new_client,
        ),
        ClientsCommand::Token { id } => Request::send(
            "POST",
            admin(&["clients", id, "token"]),
            None,
            show_client_token,
        ),
        ClientsCommand::Password {
            id,
            password_file,
            clear,
        } => match (password_file, clear) {
            (_, true) => Request::send(
                "DELETE",
                admin(&["clients", id, "password"]),
                None,
                show_password_cleared,
            ),
            (Some(file), false) => Request::send(
                "POST",
                admin(&["clients", id, "password"]),
                Some(json!({ "password": read_password(file)? })),
                show_password_set,
            ),
            (None, false) => {
                return Err(AdminError::Usage(
                    "give --password-file FILE (- for standard input) or --clear".to_owned(),
                ))
            }
        },
    })
}

fn orders(command: &OrdersCommand) -> Result<Request, AdminError> {
    Ok(match command {
        OrdersCommand::List {
            client,
            after,
            limit,
        } => page(
            &admin(&["orders"]),
            &[("client", client.clone())],
            after.clone(),
            *limit,
            table::orders,
        ),
        OrdersCommand::Show { id } => Request::get(admin(&["orders", id]), table::order),
        OrdersCommand::Create {
            id,
            client,
            product,
            settings,
        } => {
            let mut body = json!({
                "client": client, "product": product,
                "features": settings.features(), "counters": settings.counters(),
            });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            Request::send("POST", admin(&["orders"]), Some(body), table::order)
        }
        OrdersCommand::Update { id, settings } => {
            if settings.is_empty() {
                return Err(AdminError::Usage(
                    "nothing to update: give --feature NAME=on|off or --counter NAME=N".to_owned(),
                ));
            }
            Request::send(
                "PATCH",
                admin(&["orders", id]),
                Some(json!({ "features": settings.features(), "counters": settings.counters() })),
                table::order,
            )
        }
    })
}

fn licenses(command: &LicensesCommand) -> Result<Request, AdminError> {
    Ok(match command {
        LicensesCommand::List {
            product,
            client,
            order,
            after,
            limit,
        } => page(
            &admin(&["licenses"]),
            &[
                ("product", product.clone()),
                ("client", client.clone()),
                ("order", order.clone()),
            ],
            after.clone(),
            *limit,
            table::licenses,
        ),
        LicensesCommand::Activations { key, after, limit } => page(
            &admin(&["licenses", key, "activations"]),
            &[],
            after.map(|after| after.to_string()),
            *limit,
            table::activations,
        ),
        LicensesCommand::Show { key } => {
            Request::get(admin(&["licenses", key]), table::license_detail)
        }
        LicensesCommand::Issue {
            issue,
            order,
            client,
        } => Request::send(
            "POST",
            admin(&["licenses"]),
            Some(issue_body(issue, order.as_deref(), client.as_deref())?),
            show_issued,
        ),
        LicensesCommand::Extend {
            key,
            expires_at,
            seats,
            settings,
        } => {
            if expires_at.is_none() && seats.is_none() && settings.is_empty() {
                return Err(AdminError::Usage(
                    "nothing to extend: give --expires-at TIME, --seats N, --feature NAME=on|off \
                     or --counter NAME=N"
                        .to_owned(),
                ));
            }
            let mut body =
                json!({ "features": settings.features(), "counters": settings.counters() });
            if let Some(at) = expires_at {
                body["expires_at"] = json!(at);
            }
            if let Some(seats) = seats {
                body["seats"] = json!(seats);
            }
            Request::send(
                "PATCH",
                admin(&["licenses", key]),
                Some(body),
                table::decision,
            )
        }
        LicensesCommand::Revoke { key } => Request::send(
            "POST",
            admin(&["licenses", key, "revoke"]),
            None,
            table::decision,
        ),
        LicensesCommand::RemoveActivation { key, id } => Request::send(
            "DELETE",
            admin(&["licenses", key, "activations", &id.to_string()]),
            None,
            table::decision,
        ),
        LicensesCommand::ReleaseSeat { key, session } => Request::send(
            "DELETE",
            admin(&["licenses", key, "seats", session]),
            None,
            table::decision,
        ),
    })
}

fn issue_body(
    issue: &IssueArgs,
    order: Option<&str>,
    client: Option<&str>,
) -> Result<Value, AdminError> {
    let term = match (issue.term, issue.ends_at) {
        (None | Some(TermArg::Perpetual), None) => json!("perpetual"),
        (None | Some(TermArg::Rental), Some(ends_at)) => {
            json!({ "rental": { "ends_at": ends_at } })
        }
        (Some(TermArg::Rental), None) => {
            return Err(AdminError::Usage(
                "--term rental needs --ends-at TIME".to_owned(),
            ))
        }
        (Some(TermArg::Perpetual), Some(_)) => {
            return Err(AdminError::Usage(
                "a perpetual license has no --ends-at; use --term rental".to_owned(),
            ))
        }
    };
    let mut body = Map::new();
    body.insert("product".into(), json!(issue.product));
    body.insert("license_type".into(), json!(issue.license_type));
    body.insert("edition".into(), json!(issue.edition));
    body.insert("term".into(), term);
    body.insert("features".into(), json!(issue.settings.features()));
    body.insert("counters".into(), json!(issue.settings.counters()));
    let optional = [
        ("version", issue.version.as_deref().map(|v| json!(v))),
        ("order", order.map(|v| json!(v))),
        ("client", client.map(|v| json!(v))),
        ("seats", issue.seats.map(|v| json!(v))),
        ("dongle", issue.dongle.as_deref().map(|v| json!(v))),
        ("key", issue.key.as_deref().map(|v| json!(v))),
        ("count", issue.count.map(|v| json!(v))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    Ok(Value::Object(body))
}

/// The first line of `file` (`-`: standard input), without its line ending.
fn read_password(file: &Path) -> Result<String, AdminError> {
    let error = |source| AdminError::File {
        what: "the password file",
        path: file.to_owned(),
        source,
    };
    let mut line = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(error)?;
    } else {
        let handle = std::fs::File::open(file).map_err(error)?;
        std::io::BufReader::new(handle)
            .read_line(&mut line)
            .map_err(error)?;
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(AdminError::Usage(format!(
            "the password file `{}` is empty",
            file.display()
        )));
    }
    Ok(password.to_owned())
}

fn show_admin_token(answer: &Value) -> String {
    format!(
        "administrator token (shown once): {}",
        table::text(&answer["token"])
    )
}

fn show_new_client(answer: &Value) -> String {
    format!(
        "{}\nclient token (shown once): {}",
        table::client(&answer["client"]),
        table::text(&answer["token"])
    )
}

fn show_client_token(answer: &Value) -> String {
    format!(
        "client token (shown once; the old one no longer works): {}",
        table::text(&answer["token"])
    )
}

fn show_password_set(answer: &Value) -> String {
    format!(
        "client {} signs in to the client interface with the new password",
        table::text(&answer["id"])
    )
}

fn show_password_cleared(answer: &Value) -> String {
    format!(
        "client {} has no password any more; it signs in with its token",
        table::text(&answer["id"])
    )
}

fn show_issued(answer: &Value) -> String {
    let licenses = &answer["licenses"];
    let count = licenses.as_array().map_or(0, Vec::len);
    format!("{}\nissued {count}", table::licenses(licenses))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::client::EXIT_USAGE;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn parse(args: &[&str]) -> AdminArgs {
        Cli::try_parse_from(std::iter::once("admin").chain(args.iter().copied()))
            .unwrap()
            .admin
    }

    fn request_of(args: &[&str]) -> Request {
        request(&parse(args).command).unwrap()
    }

    #[test]
    fn commands_become_their_api_requests() {
        let issue = request_of(&[
            "licenses",
            "issue",
            "--product",
            "gstarcad",
            "--type",
            "network-key",
            "--edition",
            "professional",
            "--seats",
            "8",
            "--count",
            "2",
            "--ends-at",
            "2027-06-30",
            "--feature",
            "lisp=off",
            "--counter",
            "plot-sheets=5",
            "--client",
            "nw",
        ]);
        assert_eq!(
            (issue.method, issue.path.as_str()),
            ("POST", "/v1/admin/licenses")
        );
        assert_eq!(
            issue.body.unwrap(),
            json!({ "product": "gstarcad", "license_type": "network-key", "edition": "professional",
                    "term": { "rental": { "ends_at": "2027-06-30T00:00:00Z" } },
                    "features": { "lisp": false }, "counters": { "plot-sheets": 5 },
                    "client": "nw", "seats": 8, "count": 2 })
        );
        let extend = request_of(&["licenses", "extend", "K-1", "--seats", "9", "--json"]);
        assert_eq!(
            (extend.method, extend.path.as_str()),
            ("PATCH", "/v1/admin/licenses/K-1")
        );
        assert_eq!(
            extend.body.unwrap(),
            json!({ "features": {}, "counters": {}, "seats": 9 })
        );
        let release = request_of(&["licenses", "release-seat", "K-1", "s 1"]);
        assert_eq!(
            (release.method, release.path.as_str()),
            ("DELETE", "/v1/admin/licenses/K-1/seats/s%201")
        );
        let remove = request_of(&["licenses", "remove-activation", "K-1", "3"]);
        assert_eq!(remove.path, "/v1/admin/licenses/K-1/activations/3");
        let audit = request_of(&["audit", "--license", "K-1", "--after", "10", "--limit", "5"]);
        assert_eq!(audit.path, "/v1/admin/audit?license=K-1&after=10&limit=5");
        let list = request_of(&["licenses", "list", "--order", "o1"]);
        assert_eq!(list.path, "/v1/admin/licenses?order=o1");
        let serials = request_of(&[
            "serials",
            "issue",
            "--product",
            "acen",
            "--type",
            "standard",
            "--edition",
            "pro",
        ]);
        assert_eq!(serials.path, "/v1/admin/serials");
        assert_eq!(serials.body.unwrap()["term"], "perpetual");
        let clear = request_of(&["clients", "password", "nw", "--clear"]);
        assert_eq!(
            (clear.method, clear.path.as_str()),
            ("DELETE", "/v1/admin/clients/nw/password")
        );
    }

    #[test]
    fn options_that_make_no_request_are_refused_before_anything_is_sent() {
        for args in [
            &["licenses", "extend", "K-1"][..],
            &["orders", "update", "o1"],
            &[
                "licenses",
                "issue",
                "--product",
                "p",
                "--type",
                "t",
                "--edition",
                "e",
                "--term",
                "rental",
            ],
            &[
                "licenses",
                "issue",
                "--product",
                "p",
                "--type",
                "t",
                "--edition",
                "e",
                "--term",
                "perpetual",
                "--ends-at",
                "2027-01-01",
            ],
        ] {
            let error = request(&parse(args).command).err().unwrap();
            assert_eq!(error.exit_code(), EXIT_USAGE, "{args:?}: {error}");
        }
        // A token on the command line is refused, whatever else is given.
        let args = parse(&["--token", "lct_admin_x", "products"]);
        let mut out = Vec::new();
        let error = execute(&args, Some("lct_admin_env".into()), &mut out).unwrap_err();
        assert!(matches!(error, AdminError::TokenOnCommandLine), "{error}");
        assert!(out.is_empty());
        // No token at all.
        let args = parse(&["products"]);
        let error = execute(&args, None, &mut out).unwrap_err();
        assert!(matches!(error, AdminError::NoToken), "{error}");
    }

    #[test]
    fn a_page_with_a_next_cursor_names_the_next_one() {
        let answer = |next: Option<&str>| Answer {
            json: json!([{ "key": "A" }, { "key": "B" }]),
            raw: String::new(),
            next: next.map(str::to_owned),
        };
        assert_eq!(
            next_page_hint(true, &answer(Some("B"))).unwrap(),
            "2 shown; the next page: --after B"
        );
        // The last page, however full, names none; nor does an answer that is not a listing.
        assert_eq!(next_page_hint(true, &answer(None)), None);
        assert_eq!(next_page_hint(false, &answer(Some("B"))), None);
    }

    #[test]
    fn listings_send_their_paging_options() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["clients", "list", "--after", "acme", "--limit", "5"],
                "/v1/admin/clients?after=acme&limit=5",
            ),
            (
                &["orders", "list", "--client", "acme", "--limit", "1000"],
                "/v1/admin/orders?client=acme&limit=1000",
            ),
            (
                &["seats", "list", "--after", "K-1/s1"],
                "/v1/admin/seats?after=K-1%2Fs1",
            ),
            (
                &["seats", "list", "--license", "K-1", "--limit", "2"],
                "/v1/admin/licenses/K-1/seats?limit=2",
            ),
            (
                &["licenses", "activations", "K-1", "--after", "7"],
                "/v1/admin/licenses/K-1/activations?after=7",
            ),
            (
                &["licenses", "list", "--after", "K-1"],
                "/v1/admin/licenses?after=K-1",
            ),
        ];
        for (args, path) in cases {
            let listing = request_of(args);
            assert_eq!(
                (listing.path.as_str(), listing.paged),
                (path, true),
                "{args:?}"
            );
        }
        assert!(!request_of(&["licenses", "show", "K-1"]).paged);
    }
}
