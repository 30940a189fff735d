//! Every way a policy file can be rejected, with the line and column each diagnostic points at.
//!
//! Each test derives a small variant of one valid base policy, so the position of the offending
//! node is easy to read off: `BASE` has 14 lines and text appended to it starts on line 15.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use licet_engine::policy::MAX_POLICY_BYTES;
use licet_engine::{Policy, PolicyError};

/// A valid policy. Line numbers are shown on the right for reading the tests.
const BASE: &str = r#"licet: 1
id: base
product:
  id: cad
  name: CAD
  version: "1"
  editions: [pro, edu]
  features: { render: true }
  counters: { exports: 5 }
model: standard
license_types:
  key:
    kind: standalone
    terms: [perpetual, rental]
"#;
//   1 licet: 1
//   2 id: base
//   3 product:
//   4   id: cad
//   5   name: CAD
//   6   version: "1"
//   7   editions: [pro, edu]
//   8   features: { render: true }
//   9   counters: { exports: 5 }
//  10 model: standard
//  11 license_types:
//  12   key:
//  13     kind: standalone
//  14     terms: [perpetual, rental]
//  15 (appended text starts here; indented text continues `license_types.key`)

/// The base policy with `extra` appended (from line 15).
fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The base policy with `from` replaced by `to` (which must occur exactly once).
fn replace(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replace(from, to)
}

/// The diagnostics of a policy that must be rejected, as (line, column, message).
fn errors(yaml: &str) -> Vec<(usize, usize, String)> {
    match Policy::from_yaml("test.yaml", yaml) {
        Ok(policy) => panic!("policy `{}` was accepted:\n{yaml}", policy.id),
        Err(error) => error
            .diagnostics()
            .into_iter()
            .map(|d| {
                assert_eq!(d.file, "test.yaml");
                (d.line, d.column, d.message)
            })
            .collect(),
    }
}

/// Asserts that `yaml` is rejected with exactly one diagnostic, at `line`:`column`, whose
/// message contains `part`.
#[track_caller]
fn assert_error(yaml: &str, line: usize, column: usize, part: &str) {
    let found = errors(yaml);
    assert_eq!(found.len(), 1, "expected one diagnostic, got {found:#?}");
    let (actual_line, actual_column, message) = &found[0];
    assert!(
        message.contains(part),
        "message `{message}` does not contain `{part}`"
    );
    assert_eq!(
        (*actual_line, *actual_column),
        (line, column),
        "position of `{message}`"
    );
}

#[test]
fn the_base_policy_loads() {
    let policy = Policy::from_yaml("test.yaml", BASE).unwrap();
    assert_eq!(policy.id, "base");
    assert_eq!(policy.license_types.len(), 1);
}

// ---- stage 1: parse ----------------------------------------------------------------------------

#[test]
fn invalid_yaml_syntax_is_a_parse_error_with_its_position() {
    let yaml = replace("  editions: [pro, edu]\n", "  editions: [pro, edu\n");
    let error = Policy::from_yaml("test.yaml", &yaml).unwrap_err();
    assert!(matches!(error, PolicyError::Parse(_)), "{error:?}");
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (line, column, message) = &found[0];
    // The flow sequence opened on line 7 runs into `features:` on line 8.
    assert_eq!((*line, *column), (8, 11), "{message}");
    assert!(
        message.starts_with("did not find expected ',' or ']'"),
        "{message}"
    );
}

#[test]
fn tabs_for_indentation_are_a_parse_error() {
    let yaml = replace("    kind: standalone\n", "\tkind: standalone\n");
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, 13, "{found:#?}");
}

#[test]
fn unknown_top_level_field() {
    assert_error(&with("colour: red\n"), 15, 1, "unknown field `colour`");
}

#[test]
fn unknown_field_in_product_points_at_the_key() {
    let yaml = replace("  name: CAD\n", "  nmae: CAD\n");
    assert_error(&yaml, 5, 3, "unknown field `nmae`");
}

#[test]
fn unknown_field_in_a_license_type_points_at_the_key() {
    assert_error(&with("    seat: 5\n"), 15, 5, "unknown field `seat`");
}

#[test]
fn unknown_field_in_a_rule_points_at_the_key() {
    let yaml = with(
        "rules:\n  - id: night\n    on: [activate]\n    deny_if: 'hour < 6'\n    message: not at night\n",
    );
    assert_error(&yaml, 18, 5, "unknown field `deny_if`");
}

#[test]
fn missing_required_field() {
    let yaml = replace("model: standard\n", "");
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].2.contains("missing field `model`"), "{found:#?}");
}

#[test]
fn wrong_type_of_value() {
    let yaml = replace("licet: 1\n", "licet: one\n");
    assert_error(&yaml, 1, 8, "invalid type: string \"one\"");
}

#[test]
fn wrong_type_of_nested_value() {
    assert_error(
        &with("trial:\n  days: ten\n"),
        16,
        9,
        "invalid type: string \"ten\"",
    );
}

#[test]
fn unknown_enum_values() {
    let model = replace("model: standard\n", "model: cloud\n");
    assert_error(&model, 10, 8, "unknown variant `cloud`");
    let kind = replace("    kind: standalone\n", "    kind: floating\n");
    assert_error(&kind, 13, 11, "unknown variant `floating`");
    let term = replace("[perpetual, rental]", "[perpetual, lease]");
    assert_error(&term, 14, 24, "unknown variant `lease`");
}

#[test]
fn oversized_file() {
    let padding = "# padding\n".repeat(MAX_POLICY_BYTES / 10 + 1);
    let yaml = with(&padding);
    assert!(yaml.len() > MAX_POLICY_BYTES);
    let error = Policy::from_yaml("test.yaml", &yaml).unwrap_err();
    assert!(matches!(error, PolicyError::Parse(_)), "{error:?}");
    assert_error(&yaml, 1, 1, "larger than 1048576 bytes");
}

#[test]
fn a_file_just_under_the_limit_loads() {
    let mut yaml = BASE.to_owned();
    while yaml.len() + 10 <= MAX_POLICY_BYTES {
        yaml.push_str("# padding\n");
    }
    assert!(Policy::from_yaml("test.yaml", &yaml).is_ok());
}

// ---- stage 2: top level and product ------------------------------------------------------------

#[test]
fn unsupported_format_version() {
    let yaml = replace("licet: 1\n", "licet: 2\n");
    assert_error(
        &yaml,
        1,
        8,
        "unsupported policy format version `2`, expected 1",
    );
}

#[test]
fn empty_policy_id() {
    let yaml = replace("id: base\n", "id: \"  \"\n");
    assert_error(&yaml, 2, 5, "policy id must not be empty");
}

#[test]
fn identifiers_that_become_file_names_are_checked() {
    // A product id is the name of the client's state file: no path may hide in it.
    let yaml = replace("  id: cad\n", "  id: ../../outside\n");
    assert_error(
        &yaml,
        4,
        7,
        "product id `../../outside` must be 1 to 64 lower-case letters",
    );
    let yaml = replace("  id: cad\n", "  id: Cad\n");
    assert_error(&yaml, 4, 7, "product id `Cad`");
    let yaml = replace("id: base\n", "id: base/1\n");
    assert_error(&yaml, 2, 5, "policy id `base/1`");
    let yaml = replace("[pro, edu]", "[pro, \"e du\"]");
    assert_error(&yaml, 7, 19, "edition `e du`");
    let yaml = replace("  key:\n", "  -key:\n");
    assert_error(&yaml, 13, 5, "license type name `-key`");
    let long = format!("  id: {}\n", "a".repeat(65));
    assert_error(&replace("  id: cad\n", &long), 4, 7, "must be 1 to 64");
    assert!(Policy::from_yaml("p.yaml", &replace("  id: cad\n", "  id: cad-2027\n")).is_ok());
}

#[test]
fn empty_product_fields() {
    let name = replace("  name: CAD\n", "  name: \"\"\n");
    assert_error(&name, 5, 9, "product name must not be empty");
    let version = replace("  version: \"1\"\n", "  version: \"\"\n");
    assert_error(&version, 6, 12, "product version must not be empty");
}

#[test]
fn empty_editions() {
    let yaml = replace("[pro, edu]", "[]");
    assert_error(&yaml, 7, 13, "a product needs at least one edition");
}

#[test]
fn duplicate_edition_points_at_the_second_one() {
    let yaml = replace("[pro, edu]", "[pro, edu, pro]");
    assert_error(&yaml, 7, 24, "edition `pro` is listed twice");
}

#[test]
fn empty_edition_name() {
    let yaml = replace("[pro, edu]", "[pro, \"\"]");
    assert_error(&yaml, 7, 19, "edition name must not be empty");
}

#[test]
fn duplicate_language() {
    let yaml = with("");
    let yaml = yaml.replace(
        "  editions: [pro, edu]\n",
        "  editions: [pro, edu]\n  languages: [en, zh, en]\n",
    );
    assert_error(&yaml, 8, 23, "language `en` is listed twice");
}

// ---- models ------------------------------------------------------------------------------------

#[test]
fn web_model_activations_per_serial_bounds() {
    let web = replace("model: standard\n", "model: web\n");
    for (count, column) in [("0", 25), ("100001", 25), ("-3", 25)] {
        let yaml = format!("{web}activations_per_serial: {count}\n");
        assert_error(
            &yaml,
            15,
            column,
            &format!("activations per serial must be between 1 and 100000, not {count}"),
        );
    }
    for count in [1, 100, 100_000] {
        let yaml = format!("{web}activations_per_serial: {count}\n");
        assert!(Policy::from_yaml("test.yaml", &yaml).is_ok(), "{count}");
    }
    assert!(
        Policy::from_yaml("test.yaml", &web).is_ok(),
        "defaults to 1"
    );
}

#[test]
fn activations_per_serial_on_the_standard_model() {
    assert_error(
        &with("activations_per_serial: 3\n"),
        15,
        25,
        "`activations_per_serial` applies only to the web model",
    );
}

// ---- trial -------------------------------------------------------------------------------------

#[test]
fn trial_days_zero() {
    assert_error(
        &with("trial:\n  days: 0\n"),
        16,
        9,
        "trial days must be between 1 and 3650, not 0",
    );
}

#[test]
fn trial_edition_not_in_product() {
    assert_error(
        &with("trial:\n  days: 30\n  editions: [edu, home]\n"),
        17,
        19,
        "trial edition `home` is not an edition of the product",
    );
}

// ---- fingerprint -------------------------------------------------------------------------------

#[test]
fn fingerprint_match_at_least_bounds() {
    let fingerprint = |at_least: &str| {
        with(&format!(
            "fingerprint:\n  components: [mac, disk, cpu]\n  match_at_least: {at_least}\n"
        ))
    };
    assert_error(
        &fingerprint("0"),
        17,
        19,
        "components to match must be between 1 and 3, not 0",
    );
    assert_error(
        &fingerprint("4"),
        17,
        19,
        "components to match must be between 1 and 3, not 4",
    );
    assert!(Policy::from_yaml("test.yaml", &fingerprint("3")).is_ok());
}

#[test]
fn duplicate_fingerprint_component() {
    assert_error(
        &with("fingerprint:\n  components: [mac, disk, mac]\n  match_at_least: 2\n"),
        16,
        27,
        "component `mac` is listed twice",
    );
}

#[test]
fn empty_fingerprint_components() {
    assert_error(
        &with("fingerprint:\n  components: []\n  match_at_least: 1\n"),
        16,
        15,
        "a fingerprint needs at least one component",
    );
}

// ---- license types -----------------------------------------------------------------------------

#[test]
fn no_license_types() {
    let yaml = replace(
        "license_types:\n  key:\n    kind: standalone\n    terms: [perpetual, rental]\n",
        "license_types: {}\n",
    );
    assert_error(&yaml, 11, 16, "a policy needs at least one license type");
}

#[test]
fn license_type_without_terms() {
    let yaml = replace("[perpetual, rental]", "[]");
    assert_error(
        &yaml,
        14,
        12,
        "a license type needs at least one term (perpetual or rental)",
    );
}

#[test]
fn duplicated_term_points_at_the_second_one() {
    let yaml = replace("[perpetual, rental]", "[rental, perpetual, rental]");
    assert_error(&yaml, 14, 32, "term is listed twice");
}

#[test]
fn empty_license_type_name() {
    assert_error(
        &with("  \"\":\n    kind: standalone\n    terms: [perpetual]\n"),
        16,
        5,
        "license type name must not be empty",
    );
}

#[test]
fn rental_on_a_dongle_when_the_policy_forbids_it() {
    let dongle = "  dongle:\n    kind: standalone-dongle\n    terms: [perpetual, rental]\n";
    let forbid = "terms:\n  rental:\n    on_dongles: false\n";
    assert_error(
        &with(&format!("{dongle}{forbid}")),
        17,
        24,
        "rental terms are not allowed on dongles (`terms.rental.on_dongles: false`), but `dongle` is a standalone-dongle",
    );
    // Allowed by default, and rental on a key is fine either way.
    assert!(Policy::from_yaml("test.yaml", &with(dongle)).is_ok());
    let network_dongle = dongle.replace("standalone-dongle", "network-dongle");
    let found = errors(&with(&format!("{network_dongle}{forbid}")));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].2.contains("is a network-dongle"), "{found:#?}");
}

#[test]
fn seats_and_leases_on_a_standalone_type() {
    assert_error(
        &with("    default_seats: 5\n"),
        15,
        20,
        "seats apply only to network licenses, but `key` is standalone",
    );
    assert_error(
        &with("    lease_seconds: 60\n"),
        15,
        20,
        "heartbeat leases apply only to network licenses, but `key` is standalone",
    );
}

#[test]
fn network_seat_and_lease_bounds() {
    let network = |extra: &str| {
        with(&format!(
            "  net:\n    kind: network\n    terms: [perpetual]\n{extra}"
        ))
    };
    assert_error(
        &network("    default_seats: 0\n"),
        18,
        20,
        "default seats must be between 1 and 100000, not 0",
    );
    assert_error(
        &network("    lease_seconds: 5\n"),
        18,
        20,
        "lease seconds must be between 10 and 86400, not 5",
    );
    assert!(Policy::from_yaml(
        "test.yaml",
        &network("    default_seats: 3\n    lease_seconds: 60\n")
    )
    .is_ok());
}

#[test]
fn borrowing_on_a_standalone_key() {
    // Points at the first key of the `borrowing` section.
    assert_error(
        &with("    borrowing:\n      max_days: 7\n"),
        16,
        7,
        "borrowing is only for network license keys, but `key` is standalone",
    );
}

#[test]
fn borrowing_on_a_network_dongle() {
    assert_error(
        &with("  server:\n    kind: network-dongle\n    terms: [perpetual]\n    borrowing:\n      max_days: 7\n"),
        19,
        7,
        "borrowing is only for network license keys, but `server` is network-dongle",
    );
}

#[test]
fn borrowing_max_days_bounds() {
    let borrowing = |days: &str| {
        with(&format!(
            "  net:\n    kind: network\n    terms: [perpetual]\n    borrowing:\n      max_days: {days}\n"
        ))
    };
    assert_error(
        &borrowing("0"),
        19,
        17,
        "borrowing max days must be between 1 and 365, not 0",
    );
    assert_error(
        &borrowing("366"),
        19,
        17,
        "borrowing max days must be between 1 and 365, not 366",
    );
    assert!(Policy::from_yaml("test.yaml", &borrowing("365")).is_ok());
}

#[test]
fn activation_and_return_methods_on_a_dongle_type() {
    let dongle = "  dongle:\n    kind: standalone-dongle\n    terms: [perpetual]\n";
    assert_error(
        &with(&format!("{dongle}    activation: [online]\n")),
        18,
        17,
        "standalone-dongle licenses are activated by the dongle itself",
    );
    assert_error(
        &with(&format!("{dongle}    return: [manual]\n")),
        18,
        13,
        "standalone-dongle licenses are activated by the dongle itself",
    );
}

#[test]
fn method_listed_twice() {
    assert_error(
        &with("    activation: [online, manual, online]\n"),
        15,
        34,
        "method is listed twice",
    );
}

// ---- removal, transfer, limited, validation, clock ---------------------------------------------

#[test]
fn limited_licenses_with_end_user_removal() {
    assert_error(
        &with("removal:\n  by_end_user: true\nlimited:\n  validity_days: 30\n"),
        16,
        16,
        "end users cannot remove limited licenses",
    );
}

#[test]
fn limited_bounds() {
    assert_error(
        &with("limited:\n  validity_days: 0\n"),
        16,
        18,
        "validity days must be between 1 and 36500, not 0",
    );
    assert_error(
        &with("limited:\n  validity_days: 30\n  day_of_month: 32\n"),
        17,
        17,
        "day of month must be between 1 and 31, not 32",
    );
}

#[test]
fn transfer_without_end_user_removal() {
    let transfer = "transfer:\n  max: 2\n  period_days: 90\n";
    let message = "transfer limits need `removal.by_end_user: true`";
    // A problem with a whole section points at the section's first key.
    assert_error(&with(transfer), 16, 3, message);
    assert_error(
        &with(&format!("removal:\n  by_end_user: false\n{transfer}")),
        18,
        3,
        message,
    );
}

#[test]
fn transfer_bounds() {
    let removal = "removal:\n  by_end_user: true\n";
    assert_error(
        &with(&format!(
            "{removal}transfer:\n  max: 0\n  period_days: 90\n"
        )),
        18,
        8,
        "transfers per period must be between 1 and 1000, not 0",
    );
    assert_error(
        &with(&format!("{removal}transfer:\n  max: 2\n  period_days: 0\n")),
        19,
        16,
        "transfer period days must be between 1 and 3650, not 0",
    );
}

#[test]
fn validation_bounds() {
    assert_error(
        &with("validation:\n  interval_hours: 0\n  offline_grace_days: 3\n"),
        16,
        19,
        "validation interval hours must be between 1 and 8760, not 0",
    );
    assert_error(
        &with("validation:\n  interval_hours: 24\n  offline_grace_days: -1\n"),
        17,
        23,
        "offline grace days must be between 0 and 365, not -1",
    );
}

#[test]
fn negative_clock_tolerance() {
    assert_error(
        &with("clock:\n  rollback_tolerance_minutes: -5\n"),
        16,
        31,
        "rollback tolerance minutes must be between 0 and 1440, not -5",
    );
}

// ---- rules -------------------------------------------------------------------------------------

/// One rule under `rules:` (from line 15): `id` on line 16, `on` on 17, the condition on 18 and
/// `message` on 19.
fn rule(id: &str, on: &str, condition: &str, message: &str) -> String {
    with(&format!(
        "rules:\n  - id: {id}\n    on: [{on}]\n{condition}    message: {message}\n"
    ))
}

#[test]
fn a_valid_rule_loads() {
    let yaml = rule(
        "night",
        "activate, validate",
        "    deny_when: 'hour < 6'\n",
        "not at night",
    );
    let policy = Policy::from_yaml("test.yaml", &yaml).unwrap();
    assert_eq!(policy.rule_count(), 1);
}

#[test]
fn rule_with_unknown_request_kind() {
    let yaml = rule(
        "night",
        "activate, launch",
        "    deny_when: 'hour < 6'\n",
        "not at night",
    );
    assert_error(
        &yaml,
        17,
        20,
        "unknown request `launch`, expected one of start-trial, validate-trial, activate",
    );
}

#[test]
fn rule_without_request_kinds() {
    let yaml = rule("night", "", "    deny_when: 'hour < 6'\n", "not at night");
    assert_error(
        &yaml,
        17,
        9,
        "a rule needs at least one request kind in `on`",
    );
}

#[test]
fn rule_with_both_deny_when_and_require() {
    // Points at the rule, that is at its first key.
    let both = "    deny_when: 'hour < 6'\n    require: 'hour >= 6'\n";
    let yaml = rule("night", "activate", both, "not at night");
    assert_error(
        &yaml,
        16,
        5,
        "a rule needs exactly one of `deny_when` or `require`",
    );
}

#[test]
fn rule_with_neither_deny_when_nor_require() {
    let yaml = rule("night", "activate", "", "not at night");
    assert_error(
        &yaml,
        16,
        5,
        "a rule needs exactly one of `deny_when` or `require`",
    );
}

#[test]
fn duplicate_rule_id_points_at_the_second_rule() {
    let first =
        "  - id: night\n    on: [activate]\n    deny_when: 'hour < 6'\n    message: not at night\n";
    let yaml = with(&format!("rules:\n{first}{first}"));
    assert_error(&yaml, 20, 9, "rule id `night` is used twice");
}

#[test]
fn empty_rule_id_and_message() {
    let yaml = rule("\"\"", "activate", "    deny_when: 'hour < 6'\n", "\"\"");
    let found = errors(&yaml);
    let positions: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(positions, [(16, 9), (19, 14)], "{found:#?}");
    assert!(
        found[0].2.contains("rule id must not be empty"),
        "{found:#?}"
    );
    assert!(
        found[1].2.contains("rule message must not be empty"),
        "{found:#?}"
    );
}

#[test]
fn rule_condition_with_an_undefined_variable() {
    let yaml = rule(
        "edu",
        "borrow",
        "    deny_when: 'licence_type == \"network-key\"'\n",
        "no borrowing",
    );
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (line, column, message) = &found[0];
    assert_eq!((*line, *column), (18, 16), "{message}");
    assert!(message.contains("condition does not compile"), "{message}");
    assert!(message.contains("licence_type"), "{message}");
}

#[test]
fn rule_condition_that_is_a_statement() {
    let yaml = rule("spin", "activate", "    require: 'loop {}'\n", "never");
    assert_error(&yaml, 18, 14, "condition does not compile");
}

#[test]
fn rule_condition_that_does_not_parse() {
    let yaml = rule("broken", "activate", "    require: 'hour >'\n", "never");
    assert_error(&yaml, 18, 14, "condition does not compile");
}

// ---- several problems --------------------------------------------------------------------------

#[test]
fn several_problems_are_all_reported_sorted_by_line() {
    // Written so that the order in which they are found differs from the file order.
    let yaml = format!(
        "{}{}",
        replace("licet: 1\n", "licet: 3\n")
            .replace("[pro, edu]", "[pro, pro]")
            .replace("[perpetual, rental]", "[]"),
        "rules:\n  - id: r\n    on: [launch]\n    require: 'true'\n    message: m\n\
         clock:\n  rollback_tolerance_minutes: 2000\n\
         trial:\n  days: 0\n"
    );
    let found = errors(&yaml);
    let positions: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(
        positions,
        [(1, 8), (7, 19), (14, 12), (17, 10), (21, 31), (23, 9)],
        "{found:#?}"
    );
    let expected = [
        "unsupported policy format version `3`",
        "edition `pro` is listed twice",
        "a license type needs at least one term",
        "unknown request `launch`",
        "rollback tolerance minutes must be between 0 and 1440, not 2000",
        "trial days must be between 1 and 3650, not 0",
    ];
    for ((_, _, message), part) in found.iter().zip(expected) {
        assert!(
            message.contains(part),
            "`{message}` does not contain `{part}`"
        );
    }
    let error = Policy::from_yaml("test.yaml", &yaml).unwrap_err();
    assert_eq!(error.to_string().lines().count(), 6, "{error}");
    assert!(error.to_string().starts_with("test.yaml:1:8: "), "{error}");
}

// ---- the shipped policies ----------------------------------------------------------------------

#[test]
fn every_example_policy_loads() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let mut loaded = 0;
    for entry in fs::read_dir(&directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("yaml") {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        if let Err(error) = Policy::from_yaml(&name, &source) {
            panic!("{name} does not load:\n{error}");
        }
        loaded += 1;
    }
    assert!(
        loaded >= 4,
        "only {loaded} policies found in {}",
        directory.display()
    );
}

#[test]
fn syntax_errors_keep_where_the_unclosed_construct_started() {
    let yaml = replace("  editions: [pro, edu]\n", "  editions: [pro, edu\n");
    let found = errors(&yaml);
    assert_eq!(
        found[0].2,
        "did not find expected ',' or ']', while parsing a flow sequence at line 7 column 13"
    );
}

#[test]
fn duplicate_license_types_are_rejected() {
    let yaml = with("  key:\n    kind: network\n    terms: [perpetual]\n");
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].2.contains("`key` is defined twice"), "{found:#?}");
}

#[test]
fn duplicate_feature_and_counter_names_are_rejected() {
    let features = replace("{ render: true }", "{ render: true, render: false }");
    assert!(errors(&features)[0].2.contains("`render` is defined twice"));
    let counters = replace("{ exports: 5 }", "{ exports: 5, exports: 6 }");
    assert!(errors(&counters)[0]
        .2
        .contains("`exports` is defined twice"));
}

#[test]
fn empty_feature_names_are_rejected() {
    assert_error(
        &replace("{ render: true }", "{ render: true, \"\": false }"),
        4,
        3,
        "feature and counter names must not be empty",
    );
}

#[test]
fn a_request_listed_twice_in_a_rule_is_rejected() {
    let yaml = with(
        "rules:\n  - id: r\n    on: [activate, activate]\n    deny_when: 'true'\n    message: m\n",
    );
    assert_error(&yaml, 17, 20, "request `activate` is listed twice");
}

#[test]
fn offline_days_are_bounded_and_cover_the_validation_interval() {
    assert_error(
        &with("    offline_days: 0\n"),
        15,
        19,
        "offline days must be between 1 and 365, not 0",
    );
    assert_error(
        &with("    offline_days: 1\nvalidation:\n  interval_hours: 48\n  offline_grace_days: 1\n"),
        15,
        19,
        "at least as long as the validation interval (48 hours)",
    );
    assert!(Policy::from_yaml("test.yaml", &with("    offline_days: 30\n")).is_ok());
}

#[test]
fn early_return_names_one_of_the_two_behaviours() {
    let yaml = with(
        "  net:\n    kind: network\n    terms: [perpetual]\n    borrowing:\n      max_days: 3\n      early_return: gives-back\n",
    );
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].2.contains("holds-seat"), "{found:#?}");
}

#[test]
fn strong_trial_components_must_be_fingerprint_components() {
    let yaml = with(
        "trial:\n  days: 30\n  strong_components: [machine-id, gpu]\nfingerprint:\n  components: [machine-id, disk]\n  match_at_least: 2\n",
    );
    assert_error(
        &yaml,
        17,
        35,
        "strong component `gpu` is not a fingerprint component (machine-id, disk)",
    );
    let twice = with("trial:\n  days: 30\n  strong_components: [disk, disk]\n");
    assert_error(&twice, 17, 29, "strong component `disk` is listed twice");
}
