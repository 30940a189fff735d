//! Readable tables of the administrator API's answers, for `licet-server admin ...`.
//!
//! Each function takes the JSON the API answered (as documented in `docs/server.md`) and returns
//! the text to print: a table with a header row per list, `field | value` rows for one record.
//! Times are shown in UTC (`2027-06-30 00:00:00Z`), absent values as `-`, features as
//! `name=on, name=off`, a machine by the first digits of its `machine-id` hash. Fields an answer
//! lacks are shown as `-`, so an older or newer server still prints.

use chrono::{DateTime, Utc};
use comfy_table::{presets, Table};
use serde_json::Value;

/// Shown for an absent value.
const NONE: &str = "-";

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::ASCII_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

fn items(list: &Value) -> &[Value] {
    list.as_array().map_or(&[], Vec::as_slice)
}

/// A scalar as text: strings as they are, numbers, `yes`/`no`, `-` for null or missing, and
/// compact JSON for anything else.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => NONE.to_owned(),
        Value::String(text) if text.is_empty() => NONE.to_owned(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Number(number) => number.to_string(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SSZ` (UTC); anything else as [`text`].
pub fn time(value: &Value) -> String {
    value
        .as_str()
        .and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .map_or_else(
            || text(value),
            |at| {
                at.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M:%SZ")
                    .to_string()
            },
        )
}

/// `perpetual`, or `rental until TIME`.
pub fn term(value: &Value) -> String {
    match value {
        Value::String(name) => name.clone(),
        Value::Object(map) => match map.get("rental") {
            Some(rental) => format!("rental until {}", time(&rental["ends_at"])),
            None => value.to_string(),
        },
        other => text(other),
    }
}

/// Features as `name=on, name=off`, counters as `name=N`; `-` when there are none.
pub fn settings(value: &Value) -> String {
    let Some(map) = value.as_object().filter(|map| !map.is_empty()) else {
        return NONE.to_owned();
    };
    map.iter()
        .map(|(name, setting)| match setting {
            Value::Bool(true) => format!("{name}=on"),
            Value::Bool(false) => format!("{name}=off"),
            other => format!("{name}={}", text(other)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A machine (`machine 1a2b3c4d5e6f`, the first digits of its `machine-id` hash, or of its first
/// component) or a dongle (`dongle SERIAL`).
pub fn binding(value: &Value) -> String {
    if let Some(serial) = value.get("dongle") {
        return format!("dongle {}", text(serial));
    }
    if let Some(components) = value.get("fingerprint").and_then(Value::as_object) {
        let id = components
            .get("machine-id")
            .or_else(|| components.values().next())
            .and_then(Value::as_str)
            .unwrap_or(NONE);
        let short: String = id.chars().take(12).collect();
        return format!("machine {short}");
    }
    text(value)
}

/// `GET /v1/admin/products`.
pub fn products(list: &Value) -> String {
    let mut out = table(&[
        "ID",
        "NAME",
        "VERSION",
        "MODEL",
        "EDITIONS",
        "LICENSE TYPES",
        "FEATURES",
        "COUNTERS",
    ]);
    for product in items(list) {
        let mut model = text(&product["model"]);
        if let Some(count) = product["activations_per_serial"].as_u64() {
            model = format!("{model} ({count} per serial)");
        }
        let editions = items(&product["editions"])
            .iter()
            .map(text)
            .collect::<Vec<_>>()
            .join(", ");
        let types = product["license_types"]
            .as_object()
            .map(|types| {
                types
                    .iter()
                    .map(|(name, kind)| license_type(name, kind))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|| NONE.to_owned());
        out.add_row(vec![
            text(&product["id"]),
            text(&product["name"]),
            text(&product["version"]),
            model,
            editions,
            types,
            settings(&product["features"]),
            settings(&product["counters"]),
        ]);
    }
    out.to_string()
}

fn license_type(name: &str, kind: &Value) -> String {
    let mut parts = vec![text(&kind["kind"])];
    if let Some(seats) = kind["default_seats"].as_u64() {
        parts.push(format!("{seats} seats"));
    }
    if let Some(days) = kind["borrow_max_days"].as_i64() {
        parts.push(format!("borrow {days} d"));
    }
    format!("{name} ({})", parts.join(", "))
}

/// `GET /v1/admin/clients`.
pub fn clients(list: &Value) -> String {
    let mut out = table(&["ID", "NAME", "TOKEN", "CREATED"]);
    for client in items(list) {
        out.add_row(vec![
            text(&client["id"]),
            text(&client["name"]),
            text(&client["has_token"]),
            time(&client["created_at"]),
        ]);
    }
    out.to_string()
}

fn record(rows: &[(&str, String)]) -> String {
    let mut out = table(&["FIELD", "VALUE"]);
    for (name, value) in rows {
        out.add_row(vec![(*name).to_owned(), value.clone()]);
    }
    out.to_string()
}

/// `GET /v1/admin/clients/{id}`.
pub fn client(client: &Value) -> String {
    record(&[
        ("id", text(&client["id"])),
        ("name", text(&client["name"])),
        ("has token", text(&client["has_token"])),
        ("created", time(&client["created_at"])),
    ])
}

/// `GET /v1/admin/orders`.
pub fn orders(list: &Value) -> String {
    let mut out = table(&["ID", "CLIENT", "PRODUCT", "FEATURES", "COUNTERS", "CREATED"]);
    for order in items(list) {
        out.add_row(vec![
            text(&order["id"]),
            text(&order["client"]),
            text(&order["product"]),
            settings(&order["features"]),
            settings(&order["counters"]),
            time(&order["created_at"]),
        ]);
    }
    out.to_string()
}

/// `GET /v1/admin/orders/{id}`.
pub fn order(order: &Value) -> String {
    record(&[
        ("id", text(&order["id"])),
        ("client", text(&order["client"])),
        ("product", text(&order["product"])),
        ("features", settings(&order["features"])),
        ("counters", settings(&order["counters"])),
        ("created", time(&order["created_at"])),
    ])
}

fn seats_cell(license: &Value) -> String {
    text(&license["seats"])
}

/// `GET /v1/admin/licenses`, and the licenses of `POST /v1/admin/licenses` and `/serials`.
pub fn licenses(list: &Value) -> String {
    let mut out = table(&[
        "KEY", "PRODUCT", "TYPE", "EDITION", "VERSION", "TERM", "SEATS", "STATUS", "CLIENT",
        "ORDER", "CREATED",
    ]);
    for license in items(list) {
        out.add_row(vec![
            text(&license["key"]),
            text(&license["product"]),
            text(&license["license_type"]),
            text(&license["edition"]),
            text(&license["version"]),
            term(&license["term"]),
            seats_cell(license),
            text(&license["status"]),
            text(&license["client"]),
            text(&license["order"]),
            time(&license["created_at"]),
        ]);
    }
    out.to_string()
}

/// `GET /v1/admin/licenses/{key}`: the license, then its activations and seats.
pub fn license_detail(license: &Value) -> String {
    let mut rows = vec![
        ("key", text(&license["key"])),
        ("product", text(&license["product"])),
        ("license type", text(&license["license_type"])),
        ("edition", text(&license["edition"])),
        ("version", text(&license["version"])),
        ("term", term(&license["term"])),
    ];
    // The detail's `seats` is the list of seats; a seat count is shown when the answer has one.
    if !license["seats"].is_array() {
        rows.push(("seats", seats_cell(license)));
    }
    rows.extend([
        ("status", text(&license["status"])),
        ("features", settings(&license["features"])),
        ("counters", settings(&license["counters"])),
        ("dongle", text(&license["dongle"])),
        ("client", text(&license["client"])),
        ("order", text(&license["order"])),
        ("owner", text(&license["owner"])),
        ("limited", text(&license["limited"])),
        ("created", time(&license["created_at"])),
    ]);
    if !license["seats_held"].is_null() {
        rows.push(("seats in use", text(&license["seats_held"])));
    }
    let mut out = record(&rows);
    out.push('\n');
    let key = text(&license["key"]);
    if items(&license["activations"]).is_empty() {
        out.push_str("activations: none\n");
    } else {
        out.push_str(&format!(
            "activations:\n{}\n",
            activations(&license["activations"])
        ));
    }
    if let Some(next) = license["activations_next"].as_str() {
        out.push_str(&format!(
            "more activations: admin licenses activations {key} --after {next}\n"
        ));
    }
    let seats = &license["seats"];
    if items(seats).is_empty() {
        out.push_str("seats: none");
    } else {
        out.push_str(&format!("seats:\n{}", self::seats(seats)));
    }
    if let Some(next) = license["seats_next"].as_str() {
        out.push_str(&format!(
            "\nmore seats: admin seats list --license {key} --after {next}"
        ));
    }
    out
}

/// `GET /v1/admin/licenses/{key}/activations`, and the activations of a license's detail.
pub fn activations(list: &Value) -> String {
    let mut table = table(&["ACTIVATION", "BINDING", "ACTIVATED"]);
    for activation in items(list) {
        table.add_row(vec![
            text(&activation["id"]),
            binding(&activation["binding"]),
            time(&activation["activated_at"]),
        ]);
    }
    table.to_string()
}

/// `GET /v1/admin/seats`, and the seats of a license.
pub fn seats(list: &Value) -> String {
    let mut out = table(&[
        "LICENSE",
        "SESSION",
        "STATE",
        "BINDING",
        "LEASED",
        "EXPIRES",
        "BORROWED UNTIL",
    ]);
    for seat in items(list) {
        out.add_row(vec![
            text(&seat["license_key"]),
            text(&seat["session"]),
            text(&seat["state"]),
            binding(&seat["binding"]),
            time(&seat["leased_at"]),
            time(&seat["expires_at"]),
            time(&seat["borrowed_until"]),
        ]);
    }
    out.to_string()
}

/// `GET /v1/admin/audit`.
pub fn audit(list: &Value) -> String {
    let mut out = table(&[
        "ID", "AT", "ACTOR", "ACTION", "LICENSE", "VERDICT", "CODE", "MESSAGE",
    ]);
    for entry in items(list) {
        out.add_row(vec![
            text(&entry["id"]),
            time(&entry["at"]),
            text(&entry["actor"]),
            text(&entry["action"]),
            text(&entry["license_key"]),
            text(&entry["verdict"]),
            text(&entry["code"]),
            text(&entry["message"]),
        ]);
    }
    out.to_string()
}

/// An administrator decision (`EXTENDED`, `REVOCATION_APPLIED`, `RETURNED`, `SEAT_RELEASED`,
/// `BORROW_RETURNED`): `CODE: message`, and the new expiry and seats when the decision issued a
/// certificate that says so.
pub fn decision(decision: &Value) -> String {
    let mut out = format!(
        "{}: {}",
        text(&decision["code"]),
        text(&decision["message"])
    );
    let claims = &decision["claims"];
    if claims.is_object() {
        let expires = &claims["expires_at"];
        out.push_str(&format!(
            "\nexpires: {}",
            if expires.is_null() {
                "never (perpetual)".to_owned()
            } else {
                time(expires)
            }
        ));
        if !claims["seats"].is_null() {
            out.push_str(&format!("\nseats: {}", text(&claims["seats"])));
        }
    }
    out
}

/// JSON text re-indented two spaces per level, members in the order the server sent them
/// (parsing into a map would sort them). `raw` is well-formed JSON.
pub fn pretty_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = raw.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Skip the white space of an empty object or array: `{}`, `[]`.
                while chars.peek().is_some_and(|next| next.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|next| matches!(next, '}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_indented_in_the_servers_order() {
        let raw = r#"{"z":1,"a":[{"k":"x, \"y\": {z}"},[],{}],"m":{ },"n":null}"#;
        let pretty = pretty_json(raw);
        assert_eq!(
            pretty,
            "{\n  \"z\": 1,\n  \"a\": [\n    {\n      \"k\": \"x, \\\"y\\\": {z}\"\n    },\n    [],\n    {}\n  ],\n  \"m\": {},\n  \"n\": null\n}"
        );
        let reparsed: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(reparsed, serde_json::from_str::<Value>(raw).unwrap());
        assert_eq!(pretty_json("[]"), "[]");
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(text(&json!(null)), "-");
        assert_eq!(text(&json!("")), "-");
        assert_eq!(text(&json!(true)), "yes");
        assert_eq!(text(&json!(7)), "7");
        assert_eq!(
            time(&json!("2027-06-30T12:34:56.789+02:00")),
            "2027-06-30 10:34:56Z"
        );
        assert_eq!(time(&json!("not a time")), "not a time");
        assert_eq!(term(&json!("perpetual")), "perpetual");
        assert_eq!(
            term(&json!({ "rental": { "ends_at": "2027-01-01T00:00:00Z" } })),
            "rental until 2027-01-01 00:00:00Z"
        );
        assert_eq!(
            settings(&json!({ "drawing": true, "lisp": false, "plot-sheets": 3 })),
            "drawing=on, lisp=off, plot-sheets=3"
        );
        assert_eq!(settings(&json!({})), "-");
        assert_eq!(
            binding(&json!({ "fingerprint": { "cpu": "c", "machine-id": "0123456789abcdef" } })),
            "machine 0123456789ab"
        );
        assert_eq!(binding(&json!({ "dongle": "D-1" })), "dongle D-1");
    }

    #[test]
    fn a_license_list_is_a_table_with_a_row_per_license() {
        let list = json!([
            { "key": "ACME-1", "product": "acme-designer", "license_type": "standard",
              "edition": "business", "version": "5",
              "term": { "rental": { "ends_at": "2027-01-01T00:00:00Z" } }, "seats": null,
              "status": "enabled", "client": null, "order": "o1",
              "created_at": "2026-12-01T21:33:42Z" },
            { "key": "GSTA-2", "product": "gstarcad", "license_type": "network-key",
              "edition": "professional", "version": "2027", "term": "perpetual", "seats": 5,
              "status": "revoked", "client": "nw", "order": null,
              "created_at": "2026-12-01T21:33:42Z" }
        ]);
        let shown = licenses(&list);
        let lines: Vec<&str> = shown.lines().collect();
        // Top border, header, separator, two rows, bottom border.
        assert_eq!(lines.len(), 6, "{shown}");
        assert!(
            lines[1].contains("KEY") && lines[1].contains("STATUS"),
            "{shown}"
        );
        assert!(
            lines[3].contains("ACME-1") && lines[3].contains("rental until 2027-01-01"),
            "{shown}"
        );
        assert!(
            lines[4].contains("GSTA-2") && lines[4].contains("revoked"),
            "{shown}"
        );
        // Every line of a table is as wide as the others.
        let width = lines[0].chars().count();
        assert!(
            lines.iter().all(|line| line.chars().count() == width),
            "{shown}"
        );
        // An empty list is a header alone; a field the answer lacks is `-`.
        assert_eq!(licenses(&json!([])).lines().count(), 4);
        assert!(licenses(&json!([{ "key": "K" }])).contains("| K "));
    }

    #[test]
    fn a_license_shows_its_activations_and_seats() {
        let detail = json!({
            "key": "GSTA-1", "product": "gstarcad", "license_type": "network-key",
            "edition": "professional", "version": "2027", "term": "perpetual", "seats": 5,
            "features": { "lisp": false }, "counters": {}, "status": "enabled",
            "created_at": "2026-12-01T21:33:42Z", "owner": null,
            "activations": [{ "id": 3, "binding": { "fingerprint": { "machine-id": "m1" } },
                              "activated_at": "2026-12-01T21:33:42Z" }],
            "seats": [{ "license_key": "GSTA-1", "session": "s1", "state": "borrowed",
                        "binding": { "fingerprint": { "machine-id": "m2" } },
                        "leased_at": "2026-12-01T21:33:42Z", "expires_at": "2026-12-08T00:00:00Z",
                        "borrowed_until": "2026-12-08T00:00:00Z" }]
        });
        let shown = license_detail(&detail);
        assert!(shown.contains("| features     | lisp=off"), "{shown}");
        assert!(shown.contains("activations:\n"), "{shown}");
        assert!(shown.contains("| 3          | machine m1"), "{shown}");
        assert!(shown.contains("seats:\n"), "{shown}");
        assert!(
            shown.contains("s1") && shown.contains("borrowed") && shown.contains("2026-12-08"),
            "{shown}"
        );
        let bare = license_detail(&json!({ "key": "K", "activations": [], "seats": [] }));
        assert!(bare.ends_with("activations: none\nseats: none"), "{bare}");
    }

    #[test]
    fn decisions_read_as_code_and_sentence() {
        let extended = json!({ "verdict": "allow", "code": "EXTENDED", "rule": "extension",
            "message": "license `K` is extended",
            "claims": { "expires_at": "2028-01-01T00:00:00Z", "seats": 8 } });
        assert_eq!(
            decision(&extended),
            "EXTENDED: license `K` is extended\nexpires: 2028-01-01 00:00:00Z\nseats: 8"
        );
        let revoked = json!({ "code": "REVOCATION_APPLIED", "message": "license `K` is revoked" });
        assert_eq!(
            decision(&revoked),
            "REVOCATION_APPLIED: license `K` is revoked"
        );
    }

    #[test]
    fn products_list_their_license_types_defaults_and_model() {
        let list = json!([{ "id": "gstarcad", "name": "GstarCAD", "version": "2027",
            "editions": ["professional", "standard"], "model": "web", "activations_per_serial": 1,
            "features": { "drawing": true }, "counters": { "plot-sheets": 0 },
            "license_types": {
                "network-key": { "kind": "network", "default_seats": 5, "borrow_max_days": 30 },
                "standalone-key": { "kind": "standalone", "default_seats": null, "borrow_max_days": null } },
            "policy": "gstarcad-2027" }]);
        let shown = products(&list);
        assert!(shown.contains("web (1 per serial)"), "{shown}");
        assert!(
            shown.contains("network-key (network, 5 seats, borrow 30 d)"),
            "{shown}"
        );
        assert!(shown.contains("standalone-key (standalone)"), "{shown}");
        assert!(
            shown.contains("drawing=on") && shown.contains("plot-sheets=0"),
            "{shown}"
        );
    }
}
