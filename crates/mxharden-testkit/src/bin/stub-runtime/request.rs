//! Reading an HTTP/1.1 request head and discarding its body (RFC 9112).

use std::io::{self, BufRead, Read};

/// Maximum size of the request line plus all header lines, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Maximum request body size, in bytes. Bodies are read and discarded.
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Maximum length of one chunk-size line or trailer line in a chunked body, in bytes.
const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// Maximum number of trailer lines after a chunked body.
const MAX_TRAILER_LINES: usize = 100;

/// A request head as received.
pub struct Request {
    /// The request line without its line ending.
    pub line: Vec<u8>,
    pub method: String,
    pub target: String,
    /// The header lines without their line endings, exactly as received.
    pub raw_headers: Vec<Vec<u8>>,
    /// Header names as received and values without surrounding spaces and tabs, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Returns the values of every header named `name`, compared case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request could not be served: an I/O error, or a request that gets an error response.
pub enum Failure {
    Io(io::Error),
    Reject(Rejection),
}

/// An error response: a status line such as `400 Bad Request` and a message for the body.
pub struct Rejection {
    pub status: &'static str,
    pub message: String,
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Io(error)
    }
}

fn reject(status: &'static str, message: impl Into<String>) -> Failure {
    Failure::Reject(Rejection {
        status,
        message: message.into(),
    })
}

fn bad_request(message: impl Into<String>) -> Failure {
    reject("400 Bad Request", message)
}

/// Reads a request head. Returns `None` when the client closes the connection before sending
/// anything, as a TCP readiness probe does.
pub fn read_request_head(reader: &mut impl BufRead) -> Result<Option<Request>, Failure> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut head_bytes = 0;
    loop {
        let mut line = Vec::new();
        let limit = (MAX_HEAD_BYTES - head_bytes + 1) as u64;
        let read = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
        head_bytes += read;
        if head_bytes > MAX_HEAD_BYTES {
            return Err(reject(
                "431 Request Header Fields Too Large",
                format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
            ));
        }
        if read == 0 && lines.is_empty() {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            return Err(bad_request(
                "connection closed in the middle of the request head",
            ));
        }

        strip_line_ending(&mut line);
        if line.is_empty() {
            // RFC 9112, section 2.2: a server should ignore empty lines before the request line.
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }

    let raw_headers = lines.split_off(1);
    let line = lines
        .pop()
        .expect("the loop ends only after a request line was read");
    let (method, target) = parse_request_line(&line)?;
    let headers = raw_headers
        .iter()
        .map(|raw| parse_header_line(raw))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Some(Request {
        line,
        method,
        target,
        raw_headers,
        headers,
    }))
}

fn strip_line_ending(line: &mut Vec<u8>) {
    if line.ends_with(b"\n") {
        line.pop();
    }
    if line.ends_with(b"\r") {
        line.pop();
    }
}

/// Returns the method and request target of `METHOD SP TARGET SP HTTP/1.x`.
fn parse_request_line(line: &[u8]) -> Result<(String, String), Failure> {
    let text = String::from_utf8_lossy(line);
    let parts: Vec<&str> = text.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad_request(format!("invalid request line {text:?}")));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(bad_request(format!("invalid method {method:?}")));
    }
    if target.is_empty() || target.bytes().any(|byte| byte.is_ascii_control()) {
        return Err(bad_request(format!("invalid request target {target:?}")));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(reject(
            "505 HTTP Version Not Supported",
            format!("unsupported protocol version {version:?}; expected HTTP/1.1 or HTTP/1.0"),
        ));
    }
    Ok((method.to_owned(), target.to_owned()))
}

/// Returns the name and the trimmed value of a `name: value` header line.
fn parse_header_line(raw: &[u8]) -> Result<(String, String), Failure> {
    if raw.starts_with(b" ") || raw.starts_with(b"\t") {
        return Err(bad_request("obsolete header line folding is not supported"));
    }
    let Some(colon) = raw.iter().position(|&byte| byte == b':') else {
        return Err(bad_request(format!(
            "header line without a colon: {:?}",
            String::from_utf8_lossy(raw)
        )));
    };
    let name = &raw[..colon];
    if name.is_empty() || !name.iter().copied().all(is_token_byte) {
        return Err(bad_request(format!(
            "invalid header name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    let value = String::from_utf8_lossy(&raw[colon + 1..]);
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        value.trim_matches([' ', '\t']).to_owned(),
    ))
}

/// Returns whether `byte` may appear in a method or header name (`tchar`, RFC 9110 5.6.2).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Reads and discards the request body, framed by `Transfer-Encoding: chunked` or
/// `Content-Length` (RFC 9112, section 6.3). A request with neither has no body.
pub fn discard_body(reader: &mut impl BufRead, request: &Request) -> Result<(), Failure> {
    let codings: Vec<String> = request
        .header_values("Transfer-Encoding")
        .flat_map(|value| value.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty())
        .collect();
    if !codings.is_empty() {
        // Transfer-Encoding overrides Content-Length. Only chunked framing can be read.
        if codings.last().map(String::as_str) != Some("chunked") {
            return Err(reject(
                "501 Not Implemented",
                format!("unsupported Transfer-Encoding {codings:?}; only chunked is supported"),
            ));
        }
        return discard_chunked_body(reader);
    }

    let mut length = None;
    for value in request.header_values("Content-Length") {
        let parsed: u64 = value
            .parse()
            .map_err(|_| bad_request(format!("invalid Content-Length {value:?}")))?;
        if length.is_some_and(|earlier| earlier != parsed) {
            return Err(bad_request("conflicting Content-Length headers"));
        }
        length = Some(parsed);
    }
    discard_exactly(reader, length.unwrap_or(0))
}

fn discard_chunked_body(reader: &mut impl BufRead) -> Result<(), Failure> {
    let mut total: u64 = 0;
    loop {
        let size_line = read_limited_line(reader)?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| bad_request(format!("invalid chunk size line {size_line:?}")))?;
        if size == 0 {
            break;
        }

        total = total.saturating_add(size);
        if total > MAX_BODY_BYTES {
            return Err(body_too_large());
        }
        discard_exactly(reader, size)?;
        if !read_limited_line(reader)?.is_empty() {
            return Err(bad_request("chunk data is not followed by CRLF"));
        }
    }

    for _ in 0..MAX_TRAILER_LINES {
        if read_limited_line(reader)?.is_empty() {
            return Ok(());
        }
    }
    Err(bad_request(format!(
        "more than {MAX_TRAILER_LINES} trailer lines"
    )))
}

fn discard_exactly(reader: &mut impl BufRead, length: u64) -> Result<(), Failure> {
    if length > MAX_BODY_BYTES {
        return Err(body_too_large());
    }
    let copied = io::copy(&mut reader.by_ref().take(length), &mut io::sink())?;
    if copied < length {
        return Err(bad_request(format!(
            "connection closed after {copied} of {length} body bytes"
        )));
    }
    Ok(())
}

/// Reads one line of a chunked body, without its line ending.
fn read_limited_line(reader: &mut impl BufRead) -> Result<String, Failure> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_CHUNK_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.len() > MAX_CHUNK_LINE_BYTES {
        return Err(bad_request(format!(
            "chunked body line longer than {MAX_CHUNK_LINE_BYTES} bytes"
        )));
    }
    if !line.ends_with(b"\n") {
        return Err(bad_request(
            "connection closed in the middle of a chunked body",
        ));
    }
    strip_line_ending(&mut line);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn body_too_large() -> Failure {
    reject(
        "413 Content Too Large",
        format!("request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Result<Option<Request>, Failure> {
        read_request_head(&mut head.as_bytes())
    }

    fn rejection_status(result: Result<Option<Request>, Failure>) -> &'static str {
        match result {
            Err(Failure::Reject(rejection)) => rejection.status,
            Err(Failure::Io(error)) => panic!("expected a rejection, got I/O error {error}"),
            Ok(_) => panic!("expected a rejection, got a request"),
        }
    }

    #[test]
    fn head_parsed_with_raw_lines() {
        let request = parse("\r\nGET /xas/ HTTP/1.1\r\nHost: app\r\nX-Two:  a b \r\n\r\nbody")
            .ok()
            .flatten()
            .expect("valid request");

        assert_eq!(request.line, b"GET /xas/ HTTP/1.1");
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/xas/");
        assert_eq!(
            request.raw_headers,
            [b"Host: app".to_vec(), b"X-Two:  a b ".to_vec()]
        );
        assert_eq!(request.headers[1], ("X-Two".to_owned(), "a b".to_owned()));
    }

    #[test]
    fn empty_connection_is_not_a_request() {
        assert!(matches!(parse(""), Ok(None)));
    }

    #[test]
    fn malformed_heads_rejected() {
        assert_eq!(rejection_status(parse("GET /\r\n\r\n")), "400 Bad Request");
        assert_eq!(
            rejection_status(parse("GET / HTTP/2\r\n\r\n")),
            "505 HTTP Version Not Supported"
        );
        assert_eq!(
            rejection_status(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n")),
            "400 Bad Request"
        );
        assert_eq!(
            rejection_status(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n")),
            "400 Bad Request"
        );
        assert_eq!(
            rejection_status(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n")),
            "400 Bad Request"
        );
        assert_eq!(
            rejection_status(parse("GET / HTTP/1.1\r\nHost: a")),
            "400 Bad Request"
        );
        let huge = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            rejection_status(parse(&huge)),
            "431 Request Header Fields Too Large"
        );
    }

    #[test]
    fn bodies_discarded_up_to_next_request() {
        let cases = [
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloNEXT",
                "NEXT",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\nNEXT",
                "NEXT",
            ),
            ("GET / HTTP/1.1\r\n\r\nNEXT", "NEXT"),
        ];
        for (input, rest) in cases {
            let mut reader = input.as_bytes();
            let request = read_request_head(&mut reader)
                .ok()
                .flatten()
                .expect("valid request");

            assert!(
                discard_body(&mut reader, &request).is_ok(),
                "body of {input:?} rejected"
            );
            assert_eq!(reader, rest.as_bytes(), "wrong remainder for {input:?}");
        }
    }

    #[test]
    fn invalid_bodies_rejected() {
        let cases = [
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
                "400 Bad Request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                "400 Bad Request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "400 Bad Request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                "413 Content Too Large",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                "501 Not Implemented",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "400 Bad Request",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX",
                "400 Bad Request",
            ),
        ];
        for (input, expected_status) in cases {
            let mut reader = input.as_bytes();
            let request = read_request_head(&mut reader)
                .ok()
                .flatten()
                .expect("valid head");

            match discard_body(&mut reader, &request) {
                Err(Failure::Reject(rejection)) => {
                    assert_eq!(rejection.status, expected_status, "for {input:?}")
                }
                Err(Failure::Io(error)) => panic!("I/O error {error} for {input:?}"),
                Ok(()) => panic!("body of {input:?} accepted"),
            }
        }
    }
}
