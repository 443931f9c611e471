//! The bundled JavaScript client (`js-client/client.js`), served at `{path}client.js` with an
//! ETag and caching headers.

use std::sync::LazyLock;

use http::{HeaderValue, Method, Response, StatusCode, header};
use hunchensocket_core::Body;

/// The client module, as shipped in this crate's source tree.
pub(crate) const SOURCE: &str = include_str!("../../js-client/client.js");

/// A strong ETag: a 64-bit FNV-1a hash of the module.
static ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in SOURCE.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("an ascii etag")
});

/// Answers a request for the client: `200` with the module, or `304` when the client's copy
/// is current; `405` for methods other than GET and HEAD.
pub(crate) fn respond<B>(req: &http::Request<B>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut res = Response::new(crate::engine::empty());
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == ETAG.to_str().unwrap_or("") || t.trim() == "*")
        });
    let mut res = if fresh {
        let mut res = Response::new(crate::engine::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else if head {
        Response::new(crate::engine::empty())
    } else {
        Response::new(crate::engine::body(SOURCE))
    };
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::ETAG, ETAG.clone());
    // Revalidated on each use: a server upgrade is picked up at once, and an unchanged client
    // costs a 304.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(etag: Option<&str>) -> Response<Body> {
        let mut req = http::Request::get("/socket.io/client.js");
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        respond(&req.body(()).unwrap())
    }

    #[test]
    fn served_with_etag_and_revalidated() {
        let res = get(None);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = res.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
        assert!(
            res.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("must-revalidate")
        );
        assert_eq!(get(Some(&etag)).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(get(Some("\"other\"")).status(), StatusCode::OK);
        let post = respond(
            &http::Request::post("/socket.io/client.js")
                .body(())
                .unwrap(),
        );
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
