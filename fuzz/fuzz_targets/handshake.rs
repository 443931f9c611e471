//! The opening handshake parsers on arbitrary requests and responses: a request that parses is
//! answered, and a client check never panics on whatever a server sends.
#![no_main]

use hunchensocket_core::handshake::{self, ClientRequest, Request, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(n)) = req.parse(data) {
        let mut builder = http::Request::builder()
            .method(req.method.unwrap_or("GET"))
            .uri(req.path.unwrap_or("/"))
            .version(if req.version == Some(1) {
                http::Version::HTTP_11
            } else {
                http::Version::HTTP_10
            });
        for h in req.headers.iter() {
            builder = builder.header(h.name, h.value);
        }
        if let Ok(request) = builder.body(()) {
            let _ = handshake::is_upgrade_request(&request);
            match Request::parse(&request) {
                Ok(parsed) => {
                    let offered = parsed.protocols().first().cloned();
                    let _ = parsed.accept(offered.as_deref(), data.len() % 2 == 0);
                    let mut key3 = [0u8; 8];
                    for (k, b) in key3.iter_mut().zip(&data[n..]) {
                        *k = *b;
                    }
                    let answer = parsed.hixie76_answer(&key3);
                    assert_eq!(answer.is_some(), parsed.version() == Version::Hixie76);
                }
                Err(refusal) => {
                    let _ = handshake::refusal_response(&refusal);
                }
            }
        }
    }
    // The same bytes as a server's answer to each kind of client.
    for version in [Version::Rfc6455, Version::Hixie76] {
        let client = ClientRequest::new("localhost:1", "/");
        let Ok((_, check)) = handshake::client_handshake(&client, version) else {
            continue;
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(_)) = res.parse(data) {
            let pairs: Vec<(&str, &[u8])> = res.headers.iter().map(|h| (h.name, h.value)).collect();
            let _ = check.check(res.code.unwrap_or(0), &pairs);
        }
    }
});
