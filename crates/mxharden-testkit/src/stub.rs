//! Starting the `mxharden-stub-runtime` binary and reading its request log.
//!
//! The stub runtime replaces the Mendix runtime behind nginx in tests. For every request it
//! responds `200 OK` with the request line and headers echoed in a `text/plain` body, sets the
//! cookie `XASSESSIONID=stub; Path=/; HttpOnly` (plus `; Secure` when the request carried
//! `X-Forwarded-Scheme: https`), and appends one line to its log file. A `GET` with
//! `Upgrade: websocket` gets `101 Switching Protocols` instead. The binary's
//! `--help` output describes the protocol details.
//!
//! # Log format
//!
//! One line per request, with tab-separated fields: the peer address, the method, the request
//! target, then one `name: value` field per header in the order received. Backslash, tab and
//! other control characters in a field are escaped as `\\`, `\t`, `\n`, `\r` or `\xNN`.
//! [`LogEntry::to_line`] writes this format and [`LogEntry::parse`] reads it.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netns::{Guarded, Netns, spawn_until_line};

/// File name of the stub runtime binary in cargo's target directory.
pub const STUB_RUNTIME_BIN: &str = "mxharden-stub-runtime";

/// Environment variable that overrides where [`stub_runtime_path`] looks for the binary.
pub const STUB_RUNTIME_ENV: &str = "MXHARDEN_STUB_RUNTIME";

/// Stdout line that the stub runtime prints once all its listeners are bound.
pub const READY_LINE: &str = "ready";

/// Prefix of the stdout lines, one per listener, that precede [`READY_LINE`].
pub const LISTENING_PREFIX: &str = "listening ";

/// Maximum time that [`StubRuntime::start`] waits for [`READY_LINE`].
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running stub runtime process, killed when this value is dropped.
#[derive(Debug)]
pub struct StubRuntime {
    /// The stub runtime process.
    pub process: Guarded,
    /// Bound addresses in `--listen` order, with actual port numbers where port 0 was requested.
    pub listening: Vec<SocketAddr>,
    /// The request log file.
    pub log: PathBuf,
}

impl StubRuntime {
    /// Starts the stub runtime inside `ns` (or in this process's namespace when `None`) and
    /// waits up to 10 seconds until it listens on every address in `listen`.
    ///
    /// Each address has the form `0.0.0.0:8000` or `[::]:8000`. IPv6 listeners are
    /// IPv6-only, so `0.0.0.0:8000` and `[::]:8000` can be used together. Requests are
    /// appended to `log`, which is created if missing.
    pub fn start(ns: Option<&Netns>, listen: &[&str], log: &Path) -> io::Result<StubRuntime> {
        let binary = stub_runtime_path()?;
        let mut args: Vec<&OsStr> = Vec::new();
        for address in listen {
            args.push("--listen".as_ref());
            args.push(address.as_ref());
        }
        args.push("--log".as_ref());
        args.push(log.as_os_str());

        let mut command = match ns {
            Some(ns) => ns.command(&binary, &args),
            None => {
                let mut command = Command::new(&binary);
                command.args(&args);
                command
            }
        };
        let (process, stdout_lines) = spawn_until_line(&mut command, READY_LINE, READY_TIMEOUT)?;

        let listening = stdout_lines
            .iter()
            .filter_map(|line| line.strip_prefix(LISTENING_PREFIX))
            .map(|address| {
                address.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("stub runtime printed an invalid listening address {address:?}"),
                    )
                })
            })
            .collect::<io::Result<Vec<SocketAddr>>>()?;

        Ok(StubRuntime {
            process,
            listening,
            log: log.to_owned(),
        })
    }

    /// Reads and parses every line of the request log written so far.
    pub fn log_entries(&self) -> io::Result<Vec<LogEntry>> {
        read_log(&self.log)
    }
}

/// Returns the path of the `mxharden-stub-runtime` binary.
///
/// Uses `$MXHARDEN_STUB_RUNTIME` when set. Otherwise it looks next to the running test
/// executable and in its parent directory, because cargo puts test executables in
/// `target/<profile>/deps` and binaries in `target/<profile>`.
///
/// NOTE: cargo builds this binary only when it builds the `mxharden-testkit` package's
/// binaries, as `cargo test -p mxharden-testkit` and `cargo test --workspace` do. A test in
/// another package that runs alone may find no binary, or one from an older build.
pub fn stub_runtime_path() -> io::Result<PathBuf> {
    if let Some(path) = env::var_os(STUB_RUNTIME_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{STUB_RUNTIME_ENV} is set to {}, which is not a file",
                path.display()
            ),
        ));
    }

    let test_executable = env::current_exe()?;
    for directory in test_executable.ancestors().skip(1).take(2) {
        let candidate = directory.join(STUB_RUNTIME_BIN);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{STUB_RUNTIME_BIN} not found near {}; run `cargo build -p mxharden-testkit --bins` \
             or set {STUB_RUNTIME_ENV} to its path",
            test_executable.display()
        ),
    ))
}

/// One request as recorded in the stub runtime's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Address of the client that sent the request (nginx, when it proxies).
    pub peer: SocketAddr,
    /// Request method, such as `GET`.
    pub method: String,
    /// Request target as sent, such as `/xas/?profile=1`.
    pub target: String,
    /// Header names and values in the order received, with names in their original case and
    /// values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
}

impl LogEntry {
    /// Returns the values of every header named `name`, compared case-insensitively.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Formats the entry as one log line, without the trailing newline.
    pub fn to_line(&self) -> String {
        let mut fields = vec![
            self.peer.to_string(),
            escape_field(&self.method),
            escape_field(&self.target),
        ];
        for (name, value) in &self.headers {
            fields.push(escape_field(&format!("{name}: {value}")));
        }
        fields.join("\t")
    }

    /// Parses a line written by [`LogEntry::to_line`].
    pub fn parse(line: &str) -> Result<LogEntry, String> {
        let mut fields = line.trim_end_matches('\n').split('\t');
        let peer_field = fields.next().unwrap_or_default();
        let peer = peer_field
            .parse()
            .map_err(|_| format!("invalid peer address {peer_field:?} in log line {line:?}"))?;
        let (Some(method), Some(target)) = (fields.next(), fields.next()) else {
            return Err(format!("log line {line:?} has no method and target fields"));
        };

        let mut headers = Vec::new();
        for field in fields {
            let field = unescape_field(field)?;
            let Some((name, value)) = field.split_once(": ") else {
                return Err(format!(
                    "header field {field:?} in log line {line:?} has no \": \""
                ));
            };
            headers.push((name.to_owned(), value.to_owned()));
        }

        Ok(LogEntry {
            peer,
            method: unescape_field(method)?,
            target: unescape_field(target)?,
            headers,
        })
    }
}

/// Reads and parses every line of the stub runtime log at `path`.
///
/// A missing file counts as an empty log, because the stub runtime creates the file only
/// when it starts.
pub fn read_log(path: &Path) -> io::Result<Vec<LogEntry>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(io::Error::new(
                error.kind(),
                format!("failed to read {}: {error}", path.display()),
            ));
        }
    };
    text.lines()
        .map(|line| {
            LogEntry::parse(line)
                .map_err(|message| io::Error::new(io::ErrorKind::InvalidData, message))
        })
        .collect()
}

fn escape_field(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c if c.is_ascii_control() => escaped.push_str(&format!("\\x{:02x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

fn unescape_field(field: &str) -> Result<String, String> {
    let mut text = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => text.push('\\'),
            Some('t') => text.push('\t'),
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let code = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("invalid \\x escape {hex:?} in log field {field:?}"))?;
                text.push(char::from(code));
            }
            other => return Err(format!("invalid escape {other:?} in log field {field:?}")),
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_round_trip() {
        let entry = LogEntry {
            peer: "[fd00:80::1]:41000".parse().unwrap(),
            method: "GET".to_owned(),
            target: "/xas/?a=1".to_owned(),
            headers: vec![
                ("Host".to_owned(), "app.example.test".to_owned()),
                (
                    "X-Odd".to_owned(),
                    "tab\there, back\\slash, bell\x07".to_owned(),
                ),
                ("x-forwarded-scheme".to_owned(), "https".to_owned()),
            ],
        };

        let line = entry.to_line();

        assert!(!line.contains('\n'));
        assert_eq!(line.split('\t').count(), 6);
        assert_eq!(LogEntry::parse(&line).unwrap(), entry);
    }

    #[test]
    fn header_values_ignore_case() {
        let entry = LogEntry::parse(
            "10.0.0.1:5000\tGET\t/\tX-Forwarded-Scheme: https\tx-forwarded-scheme: http",
        )
        .unwrap();

        assert_eq!(entry.header_values("X-FORWARDED-SCHEME"), ["https", "http"]);
        assert!(entry.header_values("Host").is_empty());
    }

    #[test]
    fn parse_rejects_malformed_lines() {
        assert!(LogEntry::parse("").is_err());
        assert!(LogEntry::parse("not-an-address\tGET\t/").is_err());
        assert!(LogEntry::parse("10.0.0.1:5000\tGET").is_err());
        assert!(LogEntry::parse("10.0.0.1:5000\tGET\t/\tno-colon-space").is_err());
        assert!(LogEntry::parse("10.0.0.1:5000\tGET\t/bad\\q").is_err());
        assert!(LogEntry::parse("10.0.0.1:5000\tGET\t/bad\\xZZ").is_err());
    }
}
