//! The Redis path's JSON request, as pools push it: any text. A request
//! that parses turns back into JSON that parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mint_quote_proto::json::JsonQuoteRequest;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(request) = JsonQuoteRequest::parse(&text, 7) {
        let json = JsonQuoteRequest::from_request(&request).to_json();
        let again = JsonQuoteRequest::parse(&json, 7)
            .unwrap_or_else(|e| panic!("{json} does not parse back: {e}"));
        assert_eq!(again, request);
    }
});
