//! Activation response files reach the client from outside: loading must fail cleanly and never
//! panic. The key is a fixed test key; seed the corpus with responses signed by it
//! (`SigningKey::from_bytes(&[7; 32])`, as in the engine's tests) to get past the signature.

#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use licet_engine::exchange::ActivationResponse;

fuzz_target!(|file: &[u8]| {
    let vendor = SigningKey::from_bytes(&[7; 32]).verifying_key();
    if let Ok(response) = ActivationResponse::from_xml(file, &vendor) {
        // Whatever loads is exactly what the server wrote (up to CRLF and a byte order mark).
        let written = response.to_xml();
        let again = ActivationResponse::from_xml(written.as_bytes(), &vendor)
            .expect("written responses load");
        assert_eq!(again, response);
    }
});
