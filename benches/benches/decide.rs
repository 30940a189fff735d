//! `decide` on the GstarCAD policy: validate, activate and checkout, without and with a Rhai rule.

use criterion::{criterion_group, criterion_main, Criterion};
use licet_benches::{
    activate_case, checkout_case, now, policy_with_rule, policy_without_rules, validate_case,
};
use licet_engine::{decide, Code, Policy, Request, State};
use std::hint::black_box;

fn cases() -> [(&'static str, (State, Request), Code); 3] {
    [
        ("validate", validate_case(), Code::Valid),
        ("activate", activate_case(), Code::Activated),
        ("checkout", checkout_case(), Code::SeatGranted),
    ]
}

fn bench_policy(c: &mut Criterion, label: &str, policy: &Policy) {
    let mut group = c.benchmark_group(format!("decide/{label}"));
    for (name, (state, request), expected) in cases() {
        let decision = decide(policy, &state, &request, now());
        assert_eq!(decision.code, expected, "{name}: {}", decision.message);
        group.bench_function(name, |b| {
            b.iter(|| {
                decide(
                    black_box(policy),
                    black_box(&state),
                    black_box(&request),
                    black_box(now()),
                )
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let (Ok(without), Ok(with)) = (policy_without_rules(), policy_with_rule()) else {
        eprintln!("the GstarCAD policy does not load");
        std::process::exit(1);
    };
    assert_eq!(without.rule_count(), 0);
    assert_eq!(with.rule_count(), 1);
    bench_policy(c, "no-rule", &without);
    bench_policy(c, "rhai-rule", &with);
}

criterion_group!(decide_benches, benches);
criterion_main!(decide_benches);
