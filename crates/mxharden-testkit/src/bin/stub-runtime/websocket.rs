//! The server side of a WebSocket opening handshake (RFC 6455, section 4.2).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::request::{Failure, Rejection, Request};

/// GUID that RFC 6455 appends to the client's key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Payload of the text frame sent right after the handshake, so that a test can check that
/// data flows through a proxy after the upgrade.
pub const GREETING: &str = "stub-runtime";

/// Time that the connection stays open after the greeting before the server closes it.
const HOLD_TIME: Duration = Duration::from_secs(1);

/// Returns whether `request` requests an upgrade to the WebSocket protocol.
pub fn is_upgrade(request: &Request) -> bool {
    request.method == "GET"
        && request
            .header_values("Upgrade")
            .flat_map(|value| value.split(','))
            .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
}

/// Returns the `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_value(key: &str) -> String {
    let digest = sha1_smol::Sha1::from(format!("{key}{WEBSOCKET_GUID}")).digest();
    BASE64.encode(digest.bytes())
}

/// Completes the handshake, sends one text frame containing [`GREETING`], waits up to one
/// second (discarding anything the client sends) and then sends a close frame.
///
/// Rejects the request with 400 when `Sec-WebSocket-Key` is missing or does not decode to 16
/// bytes, or when `Sec-WebSocket-Version` is not 13.
pub fn serve(stream: &mut TcpStream, request: &Request) -> Result<(), Failure> {
    let keys: Vec<&str> = request.header_values("Sec-WebSocket-Key").collect();
    let [key] = keys[..] else {
        return Err(bad_handshake(format!(
            "expected one Sec-WebSocket-Key header, got {}",
            keys.len()
        )));
    };
    if BASE64.decode(key).map(|nonce| nonce.len()) != Ok(16) {
        return Err(bad_handshake(format!(
            "Sec-WebSocket-Key {key:?} is not the base64 encoding of 16 bytes"
        )));
    }
    let versions: Vec<&str> = request.header_values("Sec-WebSocket-Version").collect();
    if versions != ["13"] {
        return Err(bad_handshake(format!(
            "Sec-WebSocket-Version {versions:?} is not supported; expected 13"
        )));
    }

    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_value(key)
    );
    stream.write_all(response.as_bytes())?;

    // A final (FIN) text frame with a payload shorter than 126 bytes. Server frames are not masked.
    let mut frame = vec![0x81, GREETING.len() as u8];
    frame.extend_from_slice(GREETING.as_bytes());
    stream.write_all(&frame)?;
    stream.flush()?;

    discard_input_for(stream, HOLD_TIME)?;

    // A close frame with status code 1000 (normal closure).
    stream.write_all(&[0x88, 0x02, 0x03, 0xe8])?;
    Ok(())
}

fn bad_handshake(message: String) -> Failure {
    Failure::Reject(Rejection {
        status: "400 Bad Request",
        message,
    })
}

/// Reads and discards input until `duration` has passed or the client closes the connection.
fn discard_input_for(stream: &mut TcpStream, duration: Duration) -> io::Result<()> {
    let deadline = Instant::now() + duration;
    let mut buffer = [0; 4096];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(());
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_value_matches_rfc_6455_example() {
        // The example handshake in RFC 6455, section 1.3.
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
