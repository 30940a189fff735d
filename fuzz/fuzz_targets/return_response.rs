//! Return response files reach the client from outside: loading must fail cleanly and never
//! panic. The key is a fixed test key; seed the corpus with responses signed by it
//! (`SigningKey::from_bytes(&[7; 32])`, as in the engine's tests) to get past the signature.

#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use licet_engine::exchange::ReturnResponse;

fuzz_target!(|file: &[u8]| {
    let vendor = SigningKey::from_bytes(&[7; 32]).verifying_key();
    if let Ok(response) = ReturnResponse::from_xml(file, &vendor) {
        let written = response.to_xml();
        let again =
            ReturnResponse::from_xml(written.as_bytes(), &vendor).expect("written responses load");
        assert_eq!(again, response);
    }
});
