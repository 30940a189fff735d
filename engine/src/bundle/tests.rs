#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[41; 32])
}

fn plugin(name: &str) -> BundledPlugin {
    BundledPlugin {
        manifest: format!(r#"{{"name":"{name}"}}"#).into_bytes(),
        manifest_signature: vec![7; 64],
        wasm: b"\0asm a component".to_vec(),
    }
}

fn bundle() -> ProductBundle {
    ProductBundle {
        product: "gstarcad".to_owned(),
        policy_yaml: "product:\n  id: gstarcad\n".to_owned(),
        servers: vec![
            "https://activation.example.com".to_owned(),
            "10.0.0.5:8440".to_owned(),
        ],
        server_certificate: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
        roles: BTreeMap::from([
            (PluginRole::Fingerprint, "fingerprint".to_owned()),
            (PluginRole::Online, "transport-http".to_owned()),
        ]),
        plugins: BTreeMap::from([
            ("fingerprint".to_owned(), plugin("fingerprint")),
            ("transport-http".to_owned(), plugin("transport-http")),
        ]),
    }
}

/// Signs `content` as a bundle the way the vendor's tool would, whatever it holds.
fn sealed(content: &[u8]) -> Vec<u8> {
    seal(content, &SignedKind::ProductBundle.sign(content, &vendor()))
}

#[test]
fn a_signed_bundle_reads_back_as_itself() {
    let file = bundle().sign(&vendor()).unwrap();
    assert!(file.starts_with(BUNDLE_MAGIC));
    let read = ProductBundle::verify(&file, &vendor().verifying_key()).unwrap();
    assert_eq!(read, bundle());
    let (name, fingerprint) = read.plugin_for(PluginRole::Fingerprint).unwrap();
    assert_eq!(name, "fingerprint");
    assert_eq!(fingerprint, &plugin("fingerprint"));
    assert!(read.plugin_for(PluginRole::Text).is_none());
}

#[test]
fn every_single_byte_change_is_refused() {
    let file = bundle().sign(&vendor()).unwrap();
    let key = vendor().verifying_key();
    for index in 0..file.len() {
        let mut changed = file.clone();
        changed[index] ^= 0x01;
        assert!(
            ProductBundle::verify(&changed, &key).is_err(),
            "a change at byte {index} was accepted"
        );
    }
}

#[test]
fn another_vendors_bundle_is_refused_at_the_signature() {
    let file = bundle().sign(&SigningKey::from_bytes(&[42; 32])).unwrap();
    assert_eq!(
        ProductBundle::verify(&file, &vendor().verifying_key()),
        Err(BundleError::BadSignature)
    );
}

#[test]
fn a_bundle_signature_in_another_context_is_refused() {
    let content = bundle().content_bytes();
    for kind in SignedKind::ALL {
        if kind == SignedKind::ProductBundle {
            continue;
        }
        let file = seal(&content, &kind.sign(&content, &vendor()));
        assert_eq!(
            ProductBundle::verify(&file, &vendor().verifying_key()),
            Err(BundleError::BadSignature),
            "{kind:?}"
        );
    }
}

#[test]
fn a_role_naming_a_plugin_the_bundle_does_not_carry_is_refused() {
    let mut missing = bundle();
    missing
        .roles
        .insert(PluginRole::Text, "transport-text".to_owned());
    let expected = Err(BundleError::MissingPlugin {
        role: PluginRole::Text,
        plugin: "transport-text".to_owned(),
    });
    assert_eq!(missing.sign(&vendor()).map(|_| ()), expected);
    // Signed anyway, by a tool that does not check: the reader refuses it.
    let file = sealed(&missing.content_bytes());
    assert_eq!(
        ProductBundle::verify(&file, &vendor().verifying_key()).map(|_| ()),
        expected
    );
}

#[test]
fn truncated_padded_and_foreign_files_are_refused() {
    let key = vendor().verifying_key();
    let file = bundle().sign(&vendor()).unwrap();
    assert_eq!(
        ProductBundle::verify(&file[..file.len() - 1], &key),
        Err(BundleError::Truncated)
    );
    assert_eq!(
        ProductBundle::verify(&[file.as_slice(), b"x"].concat(), &key),
        Err(BundleError::Truncated)
    );
    assert_eq!(
        ProductBundle::verify(b"product: gstarcad\n", &key),
        Err(BundleError::NotABundle)
    );
    assert_eq!(
        ProductBundle::verify(&file[..10], &key),
        Err(BundleError::Truncated)
    );
}

#[test]
fn signed_but_non_canonical_content_is_refused() {
    let key = vendor().verifying_key();
    let content = bundle().content_bytes();
    // Bytes after the last plugin.
    let padded = [content.as_slice(), &[0]].concat();
    assert!(matches!(
        ProductBundle::verify(&sealed(&padded), &key),
        Err(BundleError::Malformed(_))
    ));
    // Plugins out of order: swap the two names' places by writing them by hand.
    let mut out = Writer(Vec::new());
    out.string("gstarcad");
    out.string("product: {}\n");
    out.len(0);
    out.u8(0);
    out.len(0);
    out.len(2);
    for name in ["zeta", "alpha"] {
        out.string(name);
        for part in [b"{}".as_slice(), &[7; 64], b"\0asm"] {
            byte_string(&mut out, part);
        }
    }
    assert!(matches!(
        ProductBundle::verify(&sealed(&out.0), &key),
        Err(BundleError::Malformed(_))
    ));
    // An unknown role tag.
    let mut out = Writer(Vec::new());
    out.string("gstarcad");
    out.string("product: {}\n");
    out.len(0);
    out.u8(0);
    out.len(1);
    out.u8(99);
    out.string("x");
    out.len(0);
    assert!(matches!(
        ProductBundle::verify(&sealed(&out.0), &key),
        Err(BundleError::Malformed(_))
    ));
}

#[test]
fn a_count_beyond_its_limit_is_refused_before_anything_is_read() {
    let mut out = Writer(Vec::new());
    out.string("gstarcad");
    out.string("product: {}\n");
    out.bytes(&u32::MAX.to_be_bytes());
    assert!(matches!(
        ProductBundle::verify(&sealed(&out.0), &vendor().verifying_key()),
        Err(BundleError::Malformed(_))
    ));
}

#[test]
fn roles_have_stable_names() {
    for role in PluginRole::ALL {
        assert_eq!(PluginRole::from_name(role.name()), Some(role));
        assert_eq!(PluginRole::from_tag(role.tag()), Some(role));
    }
    assert_eq!(PluginRole::from_name("firmware"), None);
}
