//! Child processes that cannot outlive the test that started them.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Number of recent stderr lines that [`spawn_until_line`] quotes in its errors.
const STDERR_TAIL_LINES: usize = 50;

/// Maximum time that [`spawn_until_line`] waits for the rest of the child's stderr after the
/// child was killed or exited.
const STDERR_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// A child process that is sent SIGKILL and reaped when this value is dropped.
///
/// Only the child itself is killed. Processes that it forked, such as nginx workers, keep
/// running, so start servers inside a [`Netns`](crate::Netns), whose drop kills every process
/// in the namespace. The field is public so tests can read the child's pid or wait for it.
#[derive(Debug)]
pub struct Guarded(pub Child);

impl Guarded {
    /// Spawns `command` and guards the child.
    pub fn spawn(command: &mut Command) -> io::Result<Guarded> {
        command.spawn().map(Guarded).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("failed to start {command:?}: {error}"),
            )
        })
    }

    /// Returns the child's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Both calls fail harmlessly when the child has already been reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` with stdout and stderr piped and waits until it prints a stdout line
/// equal to `line`.
///
/// Returns the guarded child and the stdout lines printed before `line`. Line endings (`\n`
/// or `\r\n`) are stripped before comparing. Background threads copy the child's stderr, and
/// its stdout after `line`, to this process's stderr with `eprintln!`, so the child never
/// blocks on a full pipe. Threads inherit libtest's output capture from the test thread that
/// spawned them, so `cargo test` shows these lines only for failing tests.
///
/// Fails with `TimedOut` when `line` does not appear within `timeout`, and with an error
/// carrying the exit status when the child closes its stdout first. In both cases the child
/// is killed and the error quotes the last 50 lines of its stderr.
pub fn spawn_until_line(
    command: &mut Command,
    line: &str,
    timeout: Duration,
) -> io::Result<(Guarded, Vec<String>)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guarded = Guarded::spawn(command)?;
    let stdout = guarded
        .0
        .stdout
        .take()
        .expect("stdout was set to Stdio::piped()");
    let stderr = guarded
        .0
        .stderr
        .take()
        .expect("stderr was set to Stdio::piped()");

    let (stdout_sender, stdout_receiver) = mpsc::channel();
    thread::spawn(move || forward_lines(stdout, Some(stdout_sender), None));
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let (stderr_done_sender, stderr_done) = mpsc::channel::<()>();
    {
        let stderr_tail = Arc::clone(&stderr_tail);
        thread::spawn(move || {
            forward_lines(stderr, None, Some(&stderr_tail));
            drop(stderr_done_sender);
        });
    }

    let deadline = Instant::now() + timeout;
    let mut earlier_lines = Vec::new();
    let (kind, problem) = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match stdout_receiver.recv_timeout(remaining) {
            Ok(received) if received == line => return Ok((guarded, earlier_lines)),
            Ok(received) => earlier_lines.push(received),
            Err(RecvTimeoutError::Timeout) => {
                break (
                    io::ErrorKind::TimedOut,
                    format!("did not print {line:?} within {timeout:?}"),
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = describe_exit(&mut guarded.0)?;
                break (
                    io::ErrorKind::Other,
                    format!("closed its stdout ({status}) before printing {line:?}"),
                );
            }
        }
    };

    drop(guarded);
    // The channel disconnects when the stderr thread has read everything up to EOF.
    let _ = stderr_done.recv_timeout(STDERR_DRAIN_TIMEOUT);
    let stderr_lines: Vec<String> = stderr_tail
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .drain(..)
        .collect();
    Err(io::Error::new(
        kind,
        format!("{command:?} {problem}; stdout: {earlier_lines:?}; stderr: {stderr_lines:?}"),
    ))
}

/// Returns the child's exit status as text, waiting up to one second for it to exit.
fn describe_exit(child: &mut Child) -> io::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.to_string());
        }
        if Instant::now() >= deadline {
            return Ok("still running".to_owned());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `pipe` line by line until EOF.
///
/// Each line goes to `sender` while its receiver exists, and otherwise to this process's
/// stderr. With `tail`, each line is also kept there, up to the last 50 lines.
fn forward_lines(
    pipe: impl Read,
    sender: Option<Sender<String>>,
    tail: Option<&Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buffer = Vec::new();
    let mut sender = sender;
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buffer)
            .trim_end_matches(['\r', '\n'])
            .to_owned();

        if let Some(tail) = tail {
            let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.clone());
        }

        let unsent = match &sender {
            Some(active) => active.send(text).err().map(|error| error.0),
            None => Some(text),
        };
        if let Some(text) = unsent {
            // The receiver is gone, so every later line goes straight to stderr.
            sender = None;
            eprintln!("{text}");
        }
    }
}

/// Formats a finished command's exit status, stdout and stderr for a failure message.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
