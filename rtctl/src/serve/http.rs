//! HTTP/1.1 framing for `rtctl serve`: one request out of the bytes read so far (request
//! line and headers tokenized by `httparse`, the body framed by `Content-Length`), with
//! the limits a small embedded server needs, and responses as bytes. No I/O here: the
//! caller reads and writes the socket. Nothing in here panics on any input.

/// Most bytes of a request line and headers taken; a longer head is refused (431).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most bytes of a body taken (a `set` is a few dozen); a longer one is refused (413).
pub const MAX_BODY: usize = 16 * 1024;
/// Most header lines taken (a browser sends about 15).
const MAX_HEADERS: usize = 48;

/// One whole request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path of the request target, without its query.
    pub path: String,
    /// What follows the `?`, if anything (not decoded).
    pub query: Option<String>,
    pub body: Vec<u8>,
}

/// What the bytes so far hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not yet a whole request: read more.
    Incomplete,
    /// A whole request, and how many bytes of the input it took.
    Complete(Request, usize),
}

/// Why the bytes are no request this server takes, answered with a 4xx or 5xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Not HTTP/1.x syntax.
    Malformed,
    /// A request target that is not an absolute path (`/...`).
    BadTarget,
    HeadTooLarge,
    TooManyHeaders,
    /// A `Content-Length` that is not a decimal number, or two that disagree.
    BadContentLength,
    BodyTooLarge,
    /// `Transfer-Encoding` (chunked bodies): not implemented, a length is required.
    TransferEncoding,
    /// An HTTP version other than 1.0 and 1.1.
    Version,
}

impl BadRequest {
    pub fn status(self) -> u16 {
        match self {
            Self::Malformed | Self::BadTarget | Self::BadContentLength => 400,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::BodyTooLarge => 413,
            Self::TransferEncoding => 411,
            Self::Version => 505,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Malformed => "not an HTTP/1.1 request",
            Self::BadTarget => "the request target is not an absolute path",
            Self::HeadTooLarge => "request line and headers longer than 8 KiB",
            Self::TooManyHeaders => "more than 48 header lines",
            Self::BadContentLength => "Content-Length is not one decimal number",
            Self::BodyTooLarge => "body longer than 16 KiB",
            Self::TransferEncoding => "Transfer-Encoding is not supported: send Content-Length",
            Self::Version => "only HTTP/1.0 and HTTP/1.1 are spoken here",
        }
    }
}

/// The body length the headers announce (0 without `Content-Length`).
fn body_length(headers: &[httparse::Header]) -> Result<usize, BadRequest> {
    let mut length: Option<usize> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(BadRequest::TransferEncoding);
        }
        if !h.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let text = std::str::from_utf8(h.value)
            .map_err(|_| BadRequest::BadContentLength)?
            .trim_matches([' ', '\t']);
        // Digits only: `+5`, `-0` or `0x10` are no lengths (RFC 9110 8.6).
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadRequest::BadContentLength);
        }
        // A number too large for usize is certainly too large a body.
        let n = text
            .parse::<usize>()
            .map_err(|_| BadRequest::BodyTooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(BadRequest::BadContentLength);
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

/// Parses the first request in `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(BadRequest::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(BadRequest::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(BadRequest::Version),
        Err(_) => return Err(BadRequest::Malformed),
    };
    if head > MAX_HEAD {
        return Err(BadRequest::HeadTooLarge);
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(BadRequest::Malformed);
    };
    if !target.starts_with('/') {
        return Err(BadRequest::BadTarget);
    }
    let length = body_length(req.headers)?;
    if length > MAX_BODY {
        return Err(BadRequest::BodyTooLarge);
    }
    let Some(body) = buf.get(head..head + length) else {
        return Ok(Parsed::Incomplete);
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    Ok(Parsed::Complete(
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query,
            body: body.to_vec(),
        },
        head + length,
    ))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
/// None if a `%` is not followed by two hex digits or the result is not UTF-8.
pub fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// One response: always complete (`Content-Length`), never cached, connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// For a 405: the methods the path takes.
    pub allow: Option<&'static str>,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            allow: None,
        }
    }

    /// A refusal: its status and a one-line reason.
    pub fn refuse(why: BadRequest) -> Self {
        Self::new(why.status(), TEXT, format!("{}\n", why.describe()))
    }

    /// The bytes on the wire; `head_only` (a HEAD request) leaves the body out but keeps
    /// its length.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            out.push_str(&format!("Allow: {allow}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// RFC 9110's reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn complete(text: &[u8]) -> Request {
        match parse(text) {
            Ok(Parsed::Complete(r, n)) => {
                assert_eq!(n, text.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_and_a_post_with_a_body() {
        let r = complete(b"GET /api/telemetry?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/telemetry");
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert!(r.body.is_empty());
        let r = complete(b"POST /api/set HTTP/1.1\r\ncontent-LENGTH: 10\r\n\r\nsetpoint=5");
        assert_eq!(
            (r.method.as_str(), r.body.as_slice()),
            ("POST", &b"setpoint=5"[..])
        );
    }

    #[test]
    fn bad_requests_get_their_status() {
        for (text, why) in [
            (&b"GARBAGE\r\n\r\n"[..], BadRequest::Malformed),
            (b"GET / HTTP/2.0\r\n\r\n", BadRequest::Version),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", BadRequest::BadTarget),
            (b"GET * HTTP/1.1\r\n\r\n", BadRequest::BadTarget),
            (
                b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
                BadRequest::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                BadRequest::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                BadRequest::BodyTooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 16385\r\n\r\n",
                BadRequest::BodyTooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
        ] {
            assert_eq!(parse(text), Err(why), "{}", String::from_utf8_lossy(text));
        }
        let many: String = (0..60).map(|i| format!("X-{i}: y\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(text.as_bytes()), Err(BadRequest::TooManyHeaders));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(long.as_bytes()), Err(BadRequest::HeadTooLarge));
        assert_eq!(Response::refuse(BadRequest::BodyTooLarge).status, 413);
    }

    #[test]
    fn two_equal_lengths_are_one() {
        let r = complete(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(r.body, b"ab");
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_decode("kp=2.5&x=a+b%3D").as_deref(),
            Some("kp=2.5&x=a b=")
        );
        assert_eq!(form_decode("%2"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%ff"), None, "not UTF-8");
        assert_eq!(form_decode("%C3%A9").as_deref(), Some("é"));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = Response::new(404, TEXT, "no\n");
        let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(bytes.contains("Content-Length: 3\r\n"));
        assert!(bytes.contains("Connection: close\r\n"));
        assert!(bytes.ends_with("\r\n\r\nno\n"));
        let head = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(head.ends_with("Content-Length: 3\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"));
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9-]{0,15}"
    }

    proptest! {
        /// No input makes the parser panic, and whatever it takes lies inside the input.
        #[test]
        fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(Parsed::Complete(r, n)) = parse(&bytes) {
                prop_assert!(n <= bytes.len());
                prop_assert!(r.body.len() <= MAX_BODY);
            }
        }

        /// A request made of random parts parses back to those parts, and every proper
        /// prefix of it is incomplete.
        #[test]
        fn a_well_formed_request_round_trips(
            method in "[A-Z]{1,7}",
            path in "/[A-Za-z0-9/._~-]{0,40}",
            query in proptest::option::of("[A-Za-z0-9=&%+]{0,20}"),
            headers in proptest::collection::vec((token(), "[ -~]{0,30}"), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let headers: Vec<_> = headers
                .into_iter()
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-length")
                        && !n.eq_ignore_ascii_case("transfer-encoding")
                })
                .collect();
            let target = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let mut text = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
            for (n, v) in &headers {
                text.extend(format!("{n}: {}\r\n", v.trim()).into_bytes());
            }
            text.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
            text.extend(&body);
            let r = match parse(&text) {
                Ok(Parsed::Complete(r, n)) => {
                    prop_assert_eq!(n, text.len());
                    r
                }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(&r.method, &method);
            prop_assert_eq!(&r.path, &path);
            prop_assert_eq!(&r.query, &query);
            prop_assert_eq!(&r.body, &body);
            for cut in 0..text.len() {
                prop_assert_eq!(parse(&text[..cut]), Ok(Parsed::Incomplete), "cut at {}", cut);
            }
        }

        #[test]
        fn form_decoding_never_panics_and_undoes_encoding(s in "\\PC{0,40}") {
            let encoded: String = s
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            prop_assert_eq!(form_decode(&encoded), Some(s.clone()));
            let _ = form_decode(&s);
        }
    }
}
