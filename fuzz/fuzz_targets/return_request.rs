//! Return request files come from anyone: parsing must fail cleanly, never panic, and what it
//! accepts must write back to a file that reads the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use licet_engine::exchange::ReturnRequest;

fuzz_target!(|file: &[u8]| {
    if let Ok(request) = ReturnRequest::from_xml(file) {
        let written = request.to_xml().expect("a parsed request can be written");
        let again = ReturnRequest::from_xml(written.as_bytes()).expect("written requests parse");
        assert_eq!(again, request);
    }
});
