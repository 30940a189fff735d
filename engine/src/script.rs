//! Custom rule conditions in Rhai.
//!
//! Conditions are small boolean expressions compiled once when the policy loads. They run on a raw
//! Rhai engine (no standard library packages, no modules, no I/O) with limits on operations, call
//! depth, expression depth and value sizes. Any error, a limit breach or a result that is not a
//! boolean is reported to the caller, which denies: a broken rule never allows.
//!
//! Variables visible to a condition:
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `request` | string | the request kind, e.g. `"activate"`, `"borrow"` |
//! | `edition` | string | the edition requested (or the license's edition) |
//! | `license_type` | string | the license type name, `""` for trials |
//! | `license_kind` | string | `standalone`, `network`, `standalone-dongle`, `network-dongle` |
//! | `activations` | int | activations the license has now |
//! | `seats` | int | seats granted to the license (0 when not a network license) |
//! | `seats_in_use` | int | seats leased or borrowed now |
//! | `borrow_days` | int | days asked for by a borrow request, else 0 |
//! | `days_left` | int | whole days until the license expires, -1 when it never does |
//! | `hour` | int | hour of the day (UTC) of the request |
//! | `weekday` | int | day of the week of the request, 1 = Monday ... 7 = Sunday |
//! | `features` | map | effective custom features (name -> bool) |
//! | `counters` | map | effective custom counters (name -> int) |

use std::collections::BTreeMap;

use rhai::{Dynamic, Engine, Map, Scope, AST};

/// Limits applied to every condition.
const MAX_OPERATIONS: u64 = 10_000;
const MAX_EXPRESSION_DEPTH: usize = 32;
const MAX_CALL_LEVELS: usize = 8;
const MAX_STRING_SIZE: usize = 4_096;
const MAX_COLLECTION_SIZE: usize = 256;
/// The longest condition source accepted.
pub const MAX_CONDITION_BYTES: usize = 4_096;

/// A Rhai engine configured for policy conditions.
#[derive(Debug)]
pub(crate) struct ScriptEngine {
    engine: Engine,
}

impl Default for ScriptEngine {
    fn default() -> Self {
        let mut engine = Engine::new_raw();
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_expr_depths(MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_DEPTH);
        engine.set_max_call_levels(MAX_CALL_LEVELS);
        engine.set_max_string_size(MAX_STRING_SIZE);
        engine.set_max_array_size(MAX_COLLECTION_SIZE);
        engine.set_max_map_size(MAX_COLLECTION_SIZE);
        engine.set_strict_variables(true);
        // A misspelt feature or counter name is an error (which denies), never a silent `()`.
        engine.set_fail_on_invalid_map_property(true);
        ScriptEngine { engine }
    }
}

/// A compiled condition.
#[derive(Debug)]
pub(crate) struct Condition {
    ast: AST,
    uses_features: bool,
    uses_counters: bool,
}

/// The facts a condition can see.
#[derive(Debug, Clone)]
pub(crate) struct ConditionContext<'a> {
    pub request: &'static str,
    pub edition: &'a str,
    pub license_type: &'a str,
    pub license_kind: &'static str,
    pub activations: i64,
    pub seats: i64,
    pub seats_in_use: i64,
    pub borrow_days: i64,
    pub days_left: i64,
    pub hour: i64,
    pub weekday: i64,
    pub features: &'a BTreeMap<String, bool>,
    pub counters: &'a BTreeMap<String, i64>,
}

const VARIABLES: [&str; 13] = [
    "request",
    "edition",
    "license_type",
    "license_kind",
    "activations",
    "seats",
    "seats_in_use",
    "borrow_days",
    "days_left",
    "hour",
    "weekday",
    "features",
    "counters",
];

impl ScriptEngine {
    /// Compiles a condition, checking that it only names known variables.
    pub(crate) fn compile(&self, source: &str) -> Result<Condition, String> {
        if source.len() > MAX_CONDITION_BYTES {
            return Err(format!(
                "condition is longer than {MAX_CONDITION_BYTES} bytes"
            ));
        }
        let mut scope = Scope::new();
        for name in VARIABLES {
            scope.push_dynamic(name, Dynamic::UNIT);
        }
        let ast = self
            .engine
            .compile_expression_with_scope(&scope, source)
            .map_err(|error| format!("condition does not compile: {error}"))?;
        Ok(Condition {
            ast,
            uses_features: source.contains("features"),
            uses_counters: source.contains("counters"),
        })
    }

    /// Evaluates a condition. Errors, limit breaches and non-boolean results are errors.
    pub(crate) fn evaluate(
        &self,
        condition: &Condition,
        context: &ConditionContext<'_>,
    ) -> Result<bool, String> {
        let mut scope = Scope::new();
        scope.push_constant("request", context.request);
        scope.push_constant("edition", context.edition.to_owned());
        scope.push_constant("license_type", context.license_type.to_owned());
        scope.push_constant("license_kind", context.license_kind);
        scope.push_constant("activations", context.activations);
        scope.push_constant("seats", context.seats);
        scope.push_constant("seats_in_use", context.seats_in_use);
        scope.push_constant("borrow_days", context.borrow_days);
        scope.push_constant("days_left", context.days_left);
        scope.push_constant("hour", context.hour);
        scope.push_constant("weekday", context.weekday);
        scope.push_constant(
            "features",
            feature_map(condition.uses_features, context.features),
        );
        scope.push_constant(
            "counters",
            counter_map(condition.uses_counters, context.counters),
        );
        let value: Dynamic = self
            .engine
            .eval_ast_with_scope(&mut scope, &condition.ast)
            .map_err(|error| error.to_string())?;
        value
            .as_bool()
            .map_err(|type_name| format!("condition returned {type_name}, not a boolean"))
    }
}

fn feature_map(wanted: bool, features: &BTreeMap<String, bool>) -> Map {
    if !wanted {
        return Map::new();
    }
    features
        .iter()
        .map(|(name, value)| (name.as_str().into(), Dynamic::from_bool(*value)))
        .collect()
}

fn counter_map(wanted: bool, counters: &BTreeMap<String, i64>) -> Map {
    if !wanted {
        return Map::new();
    }
    counters
        .iter()
        .map(|(name, value)| (name.as_str().into(), Dynamic::from_int(*value)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn context<'a>(
        features: &'a BTreeMap<String, bool>,
        counters: &'a BTreeMap<String, i64>,
    ) -> ConditionContext<'a> {
        ConditionContext {
            request: "borrow",
            edition: "education",
            license_type: "network-key",
            license_kind: "network",
            activations: 1,
            seats: 5,
            seats_in_use: 2,
            borrow_days: 10,
            days_left: -1,
            hour: 13,
            weekday: 3,
            features,
            counters,
        }
    }

    #[test]
    fn evaluates_conditions_over_the_context() {
        let engine = ScriptEngine::default();
        let features = BTreeMap::from([("render".to_owned(), true)]);
        let counters = BTreeMap::from([("exports".to_owned(), 3)]);
        let ctx = context(&features, &counters);
        let check = |source: &str| engine.evaluate(&engine.compile(source).unwrap(), &ctx);
        assert_eq!(
            check(r#"edition == "education" && borrow_days > 7"#),
            Ok(true)
        );
        assert_eq!(check("features.render && counters.exports < 5"), Ok(true));
        assert_eq!(check("seats_in_use + 1 > seats"), Ok(false));
    }

    #[test]
    fn unknown_variables_are_rejected_at_compile_time() {
        let engine = ScriptEngine::default();
        let error = engine.compile("licence_type == \"x\"").unwrap_err();
        assert!(error.contains("licence_type"), "{error}");
    }

    #[test]
    fn runtime_errors_and_non_booleans_are_errors() {
        let engine = ScriptEngine::default();
        let (features, counters) = (BTreeMap::new(), BTreeMap::new());
        let ctx = context(&features, &counters);
        let run = |source: &str| engine.evaluate(&engine.compile(source).unwrap(), &ctx);
        assert!(run("seats / 0 > 1").is_err());
        assert!(run("seats + 1").unwrap_err().contains("not a boolean"));
        assert!(run("counters.missing > 1").is_err());
    }

    #[test]
    fn statements_and_oversized_sources_are_refused() {
        let engine = ScriptEngine::default();
        assert!(engine.compile("loop { }").is_err());
        assert!(engine.compile(&"1 + ".repeat(2000)).is_err());
        let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
        assert!(engine.compile(&deep).is_err());
    }
}
