//! Certificate verification (signature check over the received bytes, then decoding the claims),
//! side by side with a bare ed25519-dalek verification of the same bytes, in the same run.

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signature, SigningKey};
use licet_benches::{activate_case, now, policy_without_rules};
use licet_engine::certificate::{issue, Certificate};
use licet_engine::decide;
use licet_engine::signature::SignedKind;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let Ok(policy) = policy_without_rules() else {
        eprintln!("the GstarCAD policy does not load");
        std::process::exit(1);
    };
    let (state, request) = activate_case();
    let decision = decide(&policy, &state, &request, now());
    let Some(claims) = decision.certificate().cloned() else {
        eprintln!("activation issued no certificate: {}", decision.message);
        std::process::exit(1);
    };
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let verifying = signing.verifying_key();
    let certificate = issue(claims, &signing);
    let bytes = certificate.to_bytes();
    let (signed, signature) = bytes.split_at(bytes.len() - 64);
    let signature = Signature::from_slice(signature).unwrap_or_else(|_| std::process::exit(1));
    assert!(Certificate::from_bytes(&bytes, &verifying).is_ok());

    let mut group = c.benchmark_group("certificate");
    // The same message the certificate's signature covers: its context, then its bytes.
    let message = SignedKind::Certificate.message(signed);
    assert!(verifying.verify_strict(&message, &signature).is_ok());
    group.bench_function("bare-ed25519-verify", |b| {
        b.iter(|| verifying.verify_strict(black_box(&message), black_box(&signature)))
    });
    group.bench_function("licet-verify-and-decode", |b| {
        b.iter(|| Certificate::from_bytes(black_box(&bytes), black_box(&verifying)))
    });
    let armored = certificate.to_armored();
    group.bench_function("licet-verify-armored", |b| {
        b.iter(|| Certificate::from_armored(black_box(&armored), black_box(&verifying)))
    });
    group.finish();
}

criterion_group!(certificate_benches, benches);
criterion_main!(certificate_benches);
