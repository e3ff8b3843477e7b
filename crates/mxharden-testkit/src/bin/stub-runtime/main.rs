//! `mxharden-stub-runtime`: an HTTP/1.1 stub of the Mendix runtime for mxharden's end-to-end
//! tests. See `USAGE` for its behaviour.

mod request;
mod websocket;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mxharden_testkit::LogEntry;
use mxharden_testkit::stub::{LISTENING_PREFIX, READY_LINE};
use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};

use request::{Failure, Rejection, Request};

const USAGE: &str = "\
Usage: mxharden-stub-runtime --listen ADDR:PORT [--listen ADDR:PORT ...] [--log FILE]

An HTTP/1.1 stub of the Mendix runtime for mxharden's end-to-end tests.

Options:
  --listen ADDR:PORT  Address to listen on, such as 0.0.0.0:8000 or [::]:8000. Repeatable.
                      IPv6 listeners are IPv6-only, so 0.0.0.0:8000 and [::]:8000 can be
                      used together. Port 0 picks a free port.
  --log FILE          Append one line per request to FILE: peer address, method, request
                      target and every header as `name: value`, separated by tabs.
  --help              Print this help.

Stdout gets `listening ADDR:PORT` for each bound listener, then `ready`.

Every request gets `200 OK` with `Content-Type: text/plain`, `Connection: close` and a body
made of the request line and every header line exactly as received, one per line. The
response sets `Set-Cookie: XASSESSIONID=stub; Path=/; HttpOnly`, with `; Secure` appended
when the request has an `X-Forwarded-Scheme: https` header (name and value compared
case-insensitively). A GET with `Upgrade: websocket` gets `101 Switching Protocols`, one
text frame `stub-runtime`, and a close frame one second later.
";

/// Maximum time to wait for the next byte of a request, or for a write to the client.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum time to read leftover input after a response before closing the connection.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after a failed `accept`, which keeps errors such as EMFILE from spinning and
/// flooding stderr.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

const SESSION_COOKIE: &str = "XASSESSIONID=stub; Path=/; HttpOnly";

type SharedLog = Arc<Mutex<File>>;

struct Options {
    listen: Vec<SocketAddr>,
    log: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mxharden-stub-runtime: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mxharden-stub-runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line. Returns `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: Vec::new(),
        log: None,
    };
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("invalid argument {arg:?}: not UTF-8"))?;
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--listen" => {
                let value = args
                    .next()
                    .ok_or("--listen needs a value such as 0.0.0.0:8000")?;
                let value = value.to_string_lossy();
                let address = value
                    .parse()
                    .map_err(|_| format!("invalid --listen address {value:?}; expected ADDR:PORT such as 0.0.0.0:8000 or [::]:8000"))?;
                options.listen.push(address);
            }
            "--log" => {
                let value = args.next().ok_or("--log needs a file path")?;
                options.log = Some(PathBuf::from(value));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    if options.listen.is_empty() {
        return Err("missing --listen: give at least one address".to_owned());
    }
    Ok(Some(options))
}

fn run(options: Options) -> io::Result<()> {
    let log = match &options.log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| {
                    io::Error::new(
                        error.kind(),
                        format!("failed to open log file {}: {error}", path.display()),
                    )
                })?;
            Some(Arc::new(Mutex::new(file)))
        }
        None => None,
    };

    let mut listeners = Vec::new();
    for address in &options.listen {
        let listener = bind_listener(*address).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("failed to listen on {address}: {error}"),
            )
        })?;
        listeners.push(listener);
    }

    let bound_addresses = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    let mut stdout = io::stdout().lock();
    for address in &bound_addresses {
        writeln!(stdout, "{LISTENING_PREFIX}{address}")?;
    }
    writeln!(stdout, "{READY_LINE}")?;
    stdout.flush()?;
    drop(stdout);
    eprintln!("mxharden-stub-runtime: listening on {bound_addresses:?}");

    let accept_threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let log = log.clone();
            thread::spawn(move || accept_connections(listener, log))
        })
        .collect();
    for accept_thread in accept_threads {
        // The accept loops never return, so this only ends when the process is killed.
        let _ = accept_thread.join();
    }
    Ok(())
}

/// Binds a listening socket. IPv6 sockets get IPV6_V6ONLY, as nginx sets by default, so that
/// an IPv4 and an IPv6 wildcard listener on the same port do not conflict.
fn bind_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let SocketAddr::V6(v6_address) = address else {
        return TcpListener::bind(address);
    };
    bind_ipv6_only(v6_address)
}

fn bind_ipv6_only(address: SocketAddrV6) -> io::Result<TcpListener> {
    let socket = rustix::net::socket_with(
        AddressFamily::INET6,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_ipv6_v6only(&socket, true)?;
    // std's TcpListener::bind sets SO_REUSEADDR on Unix too, so restarts on the same port work.
    sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &address)?;
    rustix::net::listen(&socket, 128)?;
    Ok(TcpListener::from(socket))
}

fn accept_connections(listener: TcpListener, log: Option<SharedLog>) {
    let local_address = listener.local_addr().map_or_else(
        |error| format!("(unknown address: {error})"),
        |address| address.to_string(),
    );
    for connection in listener.incoming() {
        match connection {
            Ok(stream) => {
                let log = log.clone();
                thread::spawn(move || serve_connection(stream, log));
            }
            Err(error) => {
                eprintln!("mxharden-stub-runtime: accept on {local_address} failed: {error}");
                thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}

fn serve_connection(stream: TcpStream, log: Option<SharedLog>) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        // The client already disconnected.
        Err(_) => return,
    };
    if let Err(error) = serve_one_request(stream, peer, log.as_ref()) {
        eprintln!("mxharden-stub-runtime: connection from {peer} failed: {error}");
    }
}

/// Serves one request on `stream`, then closes the connection.
fn serve_one_request(
    mut stream: TcpStream,
    peer: SocketAddr,
    log: Option<&SharedLog>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);

    let outcome = match request::read_request_head(&mut reader) {
        Ok(None) => return Ok(()),
        Ok(Some(request)) => {
            write_log_entry(log, peer, &request);
            respond(&mut reader, &mut stream, &request)
        }
        Err(failure) => Err(failure),
    };

    match outcome {
        Ok(()) => {}
        Err(Failure::Io(error)) => return Err(error),
        Err(Failure::Reject(rejection)) => {
            eprintln!(
                "mxharden-stub-runtime: rejected request from {peer} with {}: {}",
                rejection.status, rejection.message
            );
            write_rejection(&mut stream, &rejection)?;
        }
    }
    close_gracefully(stream)
}

fn respond(
    reader: &mut BufReader<TcpStream>,
    stream: &mut TcpStream,
    request: &Request,
) -> Result<(), Failure> {
    if websocket::is_upgrade(request) {
        return websocket::serve(stream, request);
    }
    request::discard_body(reader, request)?;
    write_echo_response(stream, request)?;
    Ok(())
}

/// Appends the request to the log. A failed write is reported on stderr and the request is
/// still served.
fn write_log_entry(log: Option<&SharedLog>, peer: SocketAddr, request: &Request) {
    let Some(log) = log else { return };
    let entry = LogEntry {
        peer,
        method: request.method.clone(),
        target: request.target.clone(),
        headers: request.headers.clone(),
    };
    let line = format!("{}\n", entry.to_line());

    // One write_all per line on an O_APPEND file without a userspace buffer, so the line
    // is visible to readers as soon as the call returns.
    let mut file = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = file.write_all(line.as_bytes()) {
        eprintln!(
            "mxharden-stub-runtime: failed to write log entry for request from {peer}: {error}"
        );
    }
}

fn write_echo_response(stream: &mut TcpStream, request: &Request) -> io::Result<()> {
    let mut body = request.line.clone();
    body.push(b'\n');
    for raw_header in &request.raw_headers {
        body.extend_from_slice(raw_header);
        body.push(b'\n');
    }

    let forwarded_https = request
        .header_values("X-Forwarded-Scheme")
        .any(|scheme| scheme.eq_ignore_ascii_case("https"));
    let cookie = if forwarded_https {
        format!("{SESSION_COOKIE}; Secure")
    } else {
        SESSION_COOKIE.to_owned()
    };

    let head = format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         Set-Cookie: {cookie}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

fn write_rejection(stream: &mut TcpStream, rejection: &Rejection) -> io::Result<()> {
    let body = format!("{}\n", rejection.message);
    let head = format!(
        "HTTP/1.1 {}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        rejection.status,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Sends FIN, then reads leftover input for up to one second before closing. Closing a socket
/// with unread input makes Linux send RST, which can destroy the response before the client
/// has read it.
fn close_gracefully(stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER_TIMEOUT))?;
    let mut leftover = (&stream).take(1024 * 1024);
    // An error here only means the client went away or stayed silent, which ends the wait too.
    let _ = io::copy(&mut leftover, &mut io::sink());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn args_with_two_listeners_and_log() {
        let options = parse(&[
            "--listen",
            "0.0.0.0:8000",
            "--listen",
            "[::]:8000",
            "--log",
            "/tmp/x.log",
        ])
        .unwrap()
        .unwrap();

        assert_eq!(options.listen.len(), 2);
        assert_eq!(options.listen[1], "[::]:8000".parse().unwrap());
        assert_eq!(options.log, Some(PathBuf::from("/tmp/x.log")));
    }

    #[test]
    fn args_rejected() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--listen", "localhost:8000"]).is_err());
        assert!(parse(&["--listen", "0.0.0.0:8000", "--log"]).is_err());
        assert!(parse(&["--listen", "0.0.0.0:8000", "--verbose"]).is_err());
    }

    #[test]
    fn help_returns_none() {
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn ipv4_and_ipv6_wildcards_share_port() {
        let ipv4 = bind_listener("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = ipv4.local_addr().unwrap().port();

        let ipv6 = bind_listener(format!("[::]:{port}").parse().unwrap());

        assert!(ipv6.is_ok(), "binding [::]:{port} failed: {:?}", ipv6.err());
    }
}
