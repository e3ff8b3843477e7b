//! Runs every invalid or hostile desired-state file under `tests/corpus`
//! through `mxharden apply --root <sandbox>`, in text and in JSON output,
//! and checks the exit code, the message and that the sandbox tree did not
//! change.
//!
//! Each corpus file starts with comment lines that state what it must produce:
//!
//! ```text
//! # with: other-app.yaml            (optional: tests/corpus/with/<file> is passed first)
//! # expect: 10:11 app.runtime.port port 8100 is already used by another app
//! # related: with/other-app.yaml:7:11   (optional; `self:` means the case file)
//! ```
//!
//! `expect` gives the line and column, the field path (`-` for none) and a
//! text the message must contain. The sandbox is a real host tree, and the
//! test runs as root under `scripts/test-all`, so a file that validation
//! wrongly accepted would be applied and change the tree.

mod sandbox;

use std::path::{Path, PathBuf};

use sandbox::{Manifest, Sandbox, differences, manifest, repository};
use serde_json::Value;

/// Longest time one run may take before it counts as hung.
const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Fewest cases the corpus must hold, so a lost folder cannot pass as an empty run.
const MIN_CASES: usize = 150;

/// What one corpus file must produce.
#[derive(Debug)]
struct Case {
    file: PathBuf,
    with: Vec<PathBuf>,
    line: u64,
    column: u64,
    field: String,
    message: String,
    related: Option<String>,
}

fn corpus_folder() -> PathBuf {
    repository().join("tests/corpus")
}

fn header_value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("# {key}: ");
    text.lines().filter_map(|line| line.strip_prefix(prefix.as_str())).collect()
}

fn read_case(file: &Path) -> Case {
    let bytes = std::fs::read(file).expect("read a corpus file");
    // The header is ASCII even where the rest of the file is not UTF-8.
    let text = String::from_utf8_lossy(&bytes);
    let folder = file.parent().expect("corpus files lie in a folder");
    let expect = header_value(&text, "expect");
    assert_eq!(expect.len(), 1, "{}: needs exactly one `# expect:` line", file.display());
    let mut parts = expect[0].splitn(3, ' ');
    let position = parts.next().expect("a position");
    let field = parts.next().unwrap_or_else(|| panic!("{}: `# expect:` needs a field", file.display()));
    let message = parts.next().unwrap_or_else(|| panic!("{}: `# expect:` needs a message", file.display()));
    let (line, column) = position.split_once(':').expect("position written LINE:COLUMN");
    let related = header_value(&text, "related").first().map(|related| match related.strip_prefix("self:") {
        Some(rest) => format!("{}:{rest}", file.display()),
        None => format!("{}/{related}", folder.display()),
    });
    Case {
        file: file.to_path_buf(),
        with: header_value(&text, "with").iter().map(|name| folder.join("with").join(name)).collect(),
        line: line.parse().expect("a line number"),
        column: column.parse().expect("a column number"),
        field: if field == "-" { String::new() } else { field.to_owned() },
        message: message.to_owned(),
        related,
    }
}

fn all_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_folder())
        .expect("tests/corpus exists")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files.iter().map(|file| read_case(file)).collect()
}

fn run_apply(sandbox: &Sandbox, case: &Case, json: bool) -> std::process::Output {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_mxharden"));
    if json {
        command.args(["--format", "json"]);
    }
    command.arg("apply").arg("--root").arg(&sandbox.root);
    command.args(&case.with).arg(&case.file);
    // A hostile input must fail quickly; one that hangs the parser fails here.
    command.timeout(RUN_TIMEOUT);
    command.output().expect("mxharden runs")
}

/// Returns every way the text run of `case` differs from what it must produce.
fn check_text_run(case: &Case, output: &std::process::Output) -> Vec<String> {
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        problems.push(format!("exit code {:?}, expected 1", output.status.code()));
    }
    if !output.stdout.is_empty() {
        problems.push(format!("stdout is not empty: {}", String::from_utf8_lossy(&output.stdout)));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(line) = stderr.lines().find(|line| !line.starts_with("error: ")) {
        problems.push(format!("stderr line without `error: `: {line:?}"));
    }
    let field = if case.field.is_empty() { String::new() } else { format!("{}: ", case.field) };
    let prefix = format!("error: {}:{}:{}: {field}", case.file.display(), case.line, case.column);
    let found = stderr.lines().any(|line| {
        let related_ok = match &case.related {
            Some(related) => line.ends_with(&format!(" (conflicts with {related})")),
            None => true,
        };
        line.starts_with(&prefix) && line.contains(&case.message) && related_ok
    });
    if !found {
        problems.push(format!("no stderr line starts with {prefix:?} and contains {:?}; stderr:\n{stderr}", case.message));
    }
    problems
}

/// Returns every way the JSON run of `case` differs from what it must produce.
fn check_json_run(case: &Case, output: &std::process::Output) -> Vec<String> {
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        problems.push(format!("JSON run: exit code {:?}, expected 1", output.status.code()));
    }
    let document: Value = match serde_json::from_slice(&output.stdout) {
        Ok(document) => document,
        Err(error) => return vec![format!("JSON run: stdout is not one JSON document ({error})")],
    };
    if document["failed"] != Value::Bool(true) || document["changed"] != Value::Bool(false) {
        problems.push(format!("JSON run: expected failed=true and changed=false in {document}"));
    }
    let file = case.file.display().to_string();
    let matches = |error: &Value| {
        error["file"] == Value::String(file.clone())
            && error["line"].as_u64() == Some(case.line)
            && error["column"].as_u64() == Some(case.column)
            && error["field"] == Value::String(case.field.clone())
            && error["message"].as_str().is_some_and(|message| message.contains(&case.message))
            && match &case.related {
                Some(related) => error["related"] == Value::String(related.clone()),
                None => true,
            }
    };
    let errors = document["errors"].as_array().cloned().unwrap_or_default();
    if !errors.iter().any(matches) {
        problems.push(format!("JSON run: no error object matches; errors: {}", Value::Array(errors)));
    }
    problems
}

#[test]
fn corpus_is_large_enough() {
    let cases = all_cases();
    assert!(cases.len() >= MIN_CASES, "the corpus has {} cases, expected at least {MIN_CASES}", cases.len());
}

#[test]
fn corpus_cases_fail_precisely_and_change_nothing() {
    let cases = all_cases();
    let mut sandbox = Sandbox::new();
    let mut before: Manifest = manifest(&sandbox.root);
    let mut failures = Vec::new();

    for case in &cases {
        let mut problems = check_text_run(case, &run_apply(&sandbox, case, false));
        problems.extend(check_json_run(case, &run_apply(&sandbox, case, true)));
        let after = manifest(&sandbox.root);
        let changed = differences(&before, &after);
        if !changed.is_empty() {
            problems.push(format!("the sandbox changed: {}", changed.join(", ")));
            // Later cases need an unchanged tree to prove anything.
            sandbox = Sandbox::new();
            before = manifest(&sandbox.root);
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", case.file.display(), problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} corpus cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Inputs that no corpus file can stand for: a file over the size limit, a
/// device that never ends, a folder, a missing file and a file given twice.
#[test]
fn whole_file_problems_fail_and_change_nothing() {
    let work = tempfile::tempdir().expect("a temporary folder");
    let large = work.path().join("large.yaml");
    let mut text = String::from("version: 1\n");
    while text.len() <= 256 * 1024 {
        text.push_str("# padding to pass the size limit of a desired-state file\n");
    }
    std::fs::write(&large, text).expect("write the large file");
    let example = repository().join("examples/app.yaml");
    let whole_file = |file: PathBuf, with: Vec<PathBuf>, message: &str| Case {
        file,
        with,
        line: 0,
        column: 0,
        field: String::new(),
        message: message.to_owned(),
        related: None,
    };
    let cases = [
        whole_file(large, Vec::new(), "a desired-state file may have at most 262144"),
        whole_file(PathBuf::from("/dev/zero"), Vec::new(), "not a regular file"),
        whole_file(work.path().to_path_buf(), Vec::new(), "not a regular file"),
        whole_file(work.path().join("missing.yaml"), Vec::new(), "cannot read the file: No such file"),
        whole_file(example.clone(), vec![example], "the file is given more than once"),
    ];

    let sandbox = Sandbox::new();
    let before = manifest(&sandbox.root);
    let mut failures = Vec::new();
    for case in &cases {
        let mut problems = check_text_run(case, &run_apply(&sandbox, case, false));
        problems.extend(check_json_run(case, &run_apply(&sandbox, case, true)));
        let changed = differences(&before, &manifest(&sandbox.root));
        if !changed.is_empty() {
            problems.push(format!("the sandbox changed: {}", changed.join(", ")));
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", case.file.display(), problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
