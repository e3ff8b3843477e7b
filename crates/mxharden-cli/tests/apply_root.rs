//! End-to-end tests of `mxharden apply --root` on a copy of `examples/root`.
//!
//! Every test builds its own sandbox in a temporary folder and runs the real
//! `mxharden` binary against it. These tests run as root, because apply sets
//! owners. `useradd --prefix` changes only the sandbox's `etc/passwd` and
//! `etc/group`, which `first_apply_creates` checks. Not covered: apply
//! without `--dry-run` as a non-root user, because the suite runs as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use mxharden_testkit::sandbox::{copy_tree, example_spec, repository_root};
use mxharden_testkit::tree::{Ignored, TreeSnapshot as Tree, snapshot_differences, snapshot_tree, snapshot_tree_except};
use mxharden_testkit::write_self_signed_certificate;
use serde_json::Value;

/// Runtime version below the 9.24 line's minimum in the built-in policy.
const OLD_RUNTIME_METADATA: &str = r#"{"RuntimeVersion": "9.24.1", "Constants": []}"#;

/// The lock file and its folder, which a non-dry run creates before it plans
/// and leaves in place (a `flock` lock file stays between runs). The tree
/// comparisons ignore them.
const LOCK_ENTRIES: &[&str] = &["run", "run/mxharden.lock"];

const INCLUDE_FILE: &str = "srv/mendix/sales/.m2ee/mxharden.yaml";
const MAIN_FILE: &str = "srv/mendix/sales/.m2ee/m2ee.yaml";
const STATE_FILE: &str = "var/lib/mxharden/apps/sales.json";

/// A copy of `examples/root` with a test certificate, and a folder beside it
/// for desired-state files.
struct Sandbox {
    folder: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let folder = tempfile::tempdir().expect("create a temporary folder");
        copy_tree(&repository_root().join("examples/root"), &folder.path().join("root"));
        let sandbox = Sandbox { folder };
        sandbox.write_certificate();
        sandbox.write_spec("app.yaml", &example_spec());
        sandbox
    }

    fn root(&self) -> PathBuf {
        self.folder.path().join("root")
    }

    /// Host path of `relative` beneath the sandbox root.
    fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Path of a desired-state file beside the sandbox.
    fn spec(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    fn write_spec(&self, name: &str, text: &str) -> PathBuf {
        let path = self.spec(name);
        std::fs::write(&path, text).expect("write the desired-state file");
        path
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.path(relative), text).unwrap_or_else(|e| panic!("{relative}: {e}"));
    }

    /// Writes a self-signed certificate and key at the paths examples/app.yaml names.
    fn write_certificate(&self) {
        let key = self.path("etc/ssl/private/sales.key");
        let certificate = self.path("etc/ssl/certs/sales.pem");
        write_self_signed_certificate(&certificate, &key, "sales.example.com").expect("make the test certificate");
    }

    /// Runs `mxharden` with `arguments` and `specs`. `--root` follows the subcommand.
    fn run(&self, arguments: &[&str], specs: &[&Path]) -> Run {
        let (command, options) = arguments.split_first().expect("a subcommand");
        let output = assert_cmd::cargo::cargo_bin_cmd!("mxharden")
            .arg(command)
            .arg("--root")
            .arg(self.root())
            .args(options)
            .args(specs)
            .output()
            .expect("run mxharden");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `mxharden apply` with `options` on the example desired state.
    fn apply(&self, options: &[&str]) -> Run {
        let spec = self.spec("app.yaml");
        let mut arguments = vec!["apply"];
        arguments.extend_from_slice(options);
        self.run(&arguments, &[&spec])
    }

    /// Applies the example and checks that it succeeded.
    fn apply_ok(&self, options: &[&str]) -> Run {
        let run = self.apply(options);
        assert_eq!(run.code, Some(0), "apply {options:?} failed:\n{run}");
        run
    }

    /// Reads the admin password from the include file.
    fn admin_password(&self) -> String {
        let text = self.read(INCLUDE_FILE);
        let line = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("admin_pass:"))
            .unwrap_or_else(|| panic!("no admin_pass in the include file:\n{text}"));
        let value: String = serde_json::from_str(line.trim()).expect("admin_pass is a double-quoted YAML scalar");
        value
    }

    /// Records every entry beneath the sandbox root, without the run lock.
    fn snapshot(&self) -> Tree {
        snapshot_tree_except(&self.root(), LOCK_ENTRIES)
    }
}

/// What one run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Asserts that two snapshots are equal in type, owner, mode and contents, naming each entry
/// that differs. Inodes and modification times are left out.
fn assert_same_tree(before: &Tree, after: &Tree, context: &str) {
    let differences = snapshot_differences(before, after, Ignored { inode: true, modified: true });
    assert!(differences.is_empty(), "{context}: the tree changed:\n{}", differences.join("\n"));
}

/// Returns the sandbox's `etc/passwd` record of `name`, split into its seven fields.
fn passwd_entry(sandbox: &Sandbox, name: &str) -> Vec<String> {
    let passwd = sandbox.read("etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in etc/passwd:\n{passwd}"))
}

fn app_ids(sandbox: &Sandbox) -> (u32, u32) {
    let fields = passwd_entry(sandbox, "mx-sales");
    (fields[2].parse().expect("numeric uid"), fields[3].parse().expect("numeric gid"))
}

fn meta(sandbox: &Sandbox, relative: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(sandbox.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn assert_owner_mode(sandbox: &Sandbox, relative: &str, owner: (u32, u32), mode: u32) {
    let meta = meta(sandbox, relative);
    assert_eq!((meta.uid(), meta.gid()), owner, "{relative}: owner");
    assert_eq!(meta.mode() & 0o7777, mode, "{relative}: mode {:04o}, expected {mode:04o}", meta.mode() & 0o7777);
}

/// Checks every entry beneath `relative`: owned by `owner`, folders 0700,
/// files without group or other bits.
fn assert_private_tree(sandbox: &Sandbox, relative: &str, owner: (u32, u32)) {
    let tree = snapshot_tree(&sandbox.path(relative));
    assert!(tree.len() > 1, "{relative} has no entries to check");
    for (path, entry) in &tree {
        let entry_path = format!("{relative}/{path}");
        assert_eq!((entry.uid, entry.gid), owner, "{entry_path}: owner");
        match entry.kind {
            "folder" => assert_eq!(entry.mode, 0o700, "{entry_path}: mode {:04o}", entry.mode),
            _ => assert_eq!(entry.mode & 0o077, 0, "{entry_path}: mode {:04o} has group or other bits", entry.mode),
        }
    }
}

/// Reads this machine's account files, which a `--root` run must not change.
fn host_accounts() -> (String, String) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (read("/etc/passwd"), read("/etc/group"))
}

#[test]
fn first_apply_creates() {
    let sandbox = Sandbox::new();
    let host_before = host_accounts();
    sandbox.apply_ok(&[]);
    assert_eq!(host_accounts(), host_before, "apply --root changed this machine's /etc/passwd or /etc/group");

    let account = passwd_entry(&sandbox, "mx-sales");
    assert_eq!(account[6], "/usr/sbin/nologin", "shell of mx-sales");
    assert_eq!(account[5], "/srv/mendix/sales", "home of mx-sales");
    let ids = app_ids(&sandbox);
    assert_ne!(ids.0, 0, "mx-sales has uid 0");
    assert_ne!(ids.1, 0, "mx-sales has gid 0");
    let group = sandbox.read("etc/group");
    let group_ids: Vec<&str> = group
        .lines()
        .filter_map(|line| line.strip_prefix("mx-sales:"))
        .filter_map(|rest| rest.split(':').nth(1))
        .collect();
    assert_eq!(group_ids, vec![ids.1.to_string()], "group mx-sales in etc/group:\n{group}");

    assert_owner_mode(&sandbox, "srv/mendix/sales", (0, 0), 0o755);
    assert_owner_mode(&sandbox, "srv/mendix/sales/model", ids, 0o700);
    assert_owner_mode(&sandbox, "srv/mendix/sales/data", ids, 0o700);
    assert_private_tree(&sandbox, "srv/mendix/sales/model", ids);
    assert_private_tree(&sandbox, "srv/mendix/sales/data", ids);
    assert_eq!(meta(&sandbox, "srv/mendix/sales/web").mode() & 0o7777, 0o755, "web mode");

    assert_owner_mode(&sandbox, INCLUDE_FILE, ids, 0o600);
    let include = sandbox.read(INCLUDE_FILE);
    let password = sandbox.admin_password();
    assert!(password.chars().count() >= 32, "admin_pass has {} characters", password.chars().count());
    assert!(include.contains("DTAPMode: \"P\""), "{include}");
    assert!(include.contains("ApplicationRootUrl: \"https://sales.example.com\""), "{include}");

    let main = sandbox.read(MAIN_FILE);
    assert!(main.lines().any(|line| line.trim() == "- \"/srv/mendix/sales/.m2ee/mxharden.yaml\""), "{main}");
    assert!(main.lines().any(|line| line == "include:"), "{main}");

    let site = sandbox.read("etc/nginx/conf.d/mxharden-sales.conf");
    assert!(site.contains("proxy_set_header X-Forwarded-Scheme https;"), "{site}");
    assert!(sandbox.path("etc/mxharden/nftables/sales.nft").is_file(), "nft rules missing");
    assert!(sandbox.path("etc/systemd/system/mendix-sales.service").is_file(), "systemd unit missing");

    assert_owner_mode(&sandbox, STATE_FILE, (0, 0), 0o600);
    let state: Value = serde_json::from_str(&sandbox.read(STATE_FILE)).expect("the state file is JSON");
    let hash = state["admin_pass_argon2id"].as_str().expect("admin_pass_argon2id is a string");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(&password), "the state file holds the password itself");
}

#[test]
fn second_apply_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    let password = sandbox.admin_password();
    let after_first = sandbox.snapshot();

    let second = sandbox.apply_ok(&["--detailed-exitcode"]);
    assert!(second.stdout.contains("1 app: no changes"), "{second}");
    assert_eq!(sandbox.admin_password(), password, "the password changed");
    assert_same_tree(&after_first, &sandbox.snapshot(), "second apply");

    let dry_run = sandbox.apply(&["--dry-run", "--detailed-exitcode"]);
    assert_eq!(dry_run.code, Some(0), "{dry_run}");
    assert!(dry_run.stdout.contains("no changes"), "{dry_run}");
}

#[test]
fn first_dry_run_changes_nothing() {
    let sandbox = Sandbox::new();
    let before = snapshot_tree(&sandbox.root());

    let run = sandbox.apply(&["--dry-run", "--detailed-exitcode"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stdout.contains("+ user mx-sales"), "{run}");
    assert_same_tree(&before, &snapshot_tree(&sandbox.root()), "dry run");
}

/// Output option sets each password check runs with.
const OUTPUT_VARIANTS: &[&[&str]] = &[
    &[],
    &["--dry-run"],
    &["--format", "json"],
    &["--dry-run", "--format", "json"],
    &["-vv"],
    &["-vv", "--log-format", "json"],
    &["--dry-run", "-vv", "--log-format", "json", "--format", "json"],
];

fn assert_not_printed(secret: &str, runs: &[(String, Run)]) {
    for (label, run) in runs {
        assert!(!run.output().contains(secret), "{label} printed the admin password");
    }
}

#[test]
fn password_never_printed() {
    let sandbox = Sandbox::new();
    let mut runs = vec![("first apply -vv --log-format json".to_owned(), sandbox.apply_ok(&["-vv", "--log-format", "json"]))];
    let password = sandbox.admin_password();
    for options in OUTPUT_VARIANTS {
        runs.push((format!("apply {options:?}"), sandbox.apply_ok(options)));
    }
    assert_not_printed(&password, &runs);
    assert_eq!(sandbox.admin_password(), password);
}

#[test]
fn first_run_password_not_printed() {
    // A dry run writes no password, so only runs that apply are checked.
    for options in OUTPUT_VARIANTS.iter().filter(|options| !options.contains(&"--dry-run")) {
        let sandbox = Sandbox::new();
        let run = sandbox.apply_ok(options);
        assert_not_printed(&sandbox.admin_password(), &[(format!("first apply {options:?}"), run)]);
    }
}

#[test]
fn adopted_password_not_printed() {
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    let generated = sandbox.admin_password();
    let adopted = "Operator-Chosen-Password-0123456789-abcdefXYZ";
    let include = sandbox.read(INCLUDE_FILE).replace(&generated, adopted);
    sandbox.write(INCLUDE_FILE, &include);

    let report = sandbox.apply(&["--dry-run", "--format", "json"]);
    assert_eq!(report.code, Some(0), "{report}");
    assert_eq!(report.json()["apps"][0]["admin_password"], "adopted", "{report}");

    let mut runs = vec![("dry run --format json".to_owned(), report)];
    for options in OUTPUT_VARIANTS {
        runs.push((format!("apply {options:?}"), sandbox.apply_ok(options)));
    }
    assert_not_printed(adopted, &runs);
    assert_not_printed(&generated, &runs);
    assert_eq!(sandbox.admin_password(), adopted, "the adopted password was replaced");

    let state: Value = serde_json::from_str(&sandbox.read(STATE_FILE)).expect("the state file is JSON");
    assert!(!state.to_string().contains(adopted), "the state file holds the password itself");
}

#[test]
fn broken_include_password_not_printed() {
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    let password = sandbox.admin_password();
    // An unclosed flow sequence two lines below the password: the parser's
    // error snippet shows the lines around the error.
    let include = sandbox
        .read(INCLUDE_FILE)
        .replace("mxruntime:", "  javaopts: [\"-Xmx2g\"\nmxruntime:");
    sandbox.write(INCLUDE_FILE, &include);

    let run = sandbox.apply(&["--dry-run"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("mxharden.yaml"), "{run}");
    assert!(!run.output().contains(&password), "the error printed the admin password");
}

/// An operator's `m2ee.yaml` with comments and a database section.
const OPERATOR_M2EE: &str = "# m2ee-tools settings for sales, kept by the operations team.
m2ee:
  javaopts: [\"-Xmx2g\", \"-Dfile.encoding=UTF-8\"]   # heap size agreed with the DBA
mxruntime:
  # Production database
  DatabaseType: PostgreSQL
  DatabaseHost: \"db.internal:5432\"
  DatabaseName: sales
  DatabaseUserName: sales
  DatabasePassword: \"Db-Secret-7f3a9c-do-not-print\"
";

fn write_operator_m2ee(sandbox: &Sandbox) {
    std::fs::create_dir(sandbox.path("srv/mendix/sales/.m2ee")).expect("create .m2ee");
    sandbox.write(MAIN_FILE, OPERATOR_M2EE);
}

#[test]
fn operator_m2ee_lines_kept() {
    let sandbox = Sandbox::new();
    write_operator_m2ee(&sandbox);
    sandbox.apply_ok(&[]);

    let main = sandbox.read(MAIN_FILE);
    assert!(main.starts_with(OPERATOR_M2EE), "the operator's text is not kept as written:\n{main}");
    for line in OPERATOR_M2EE.lines() {
        assert!(main.lines().any(|kept| kept == line), "line lost: {line:?}\n{main}");
    }
    assert!(main.contains("include:\n  - \"/srv/mendix/sales/.m2ee/mxharden.yaml\"\n"), "{main}");
    assert_owner_mode(&sandbox, MAIN_FILE, app_ids(&sandbox), 0o600);

    let second = sandbox.apply_ok(&["--detailed-exitcode"]);
    assert!(second.stdout.contains("no changes"), "{second}");
    assert_eq!(sandbox.read(MAIN_FILE), main, "the second apply changed m2ee.yaml");
}

#[test]
fn operator_m2ee_secret_not_printed() {
    let sandbox = Sandbox::new();
    write_operator_m2ee(&sandbox);
    for options in [&["--dry-run"][..], &["--dry-run", "--format", "json"], &[]] {
        let run = sandbox.apply(options);
        assert!(matches!(run.code, Some(0) | Some(2)), "{run}");
        assert!(!run.output().contains("Db-Secret-7f3a9c"), "apply {options:?} printed the operator's database password");
    }
}

#[test]
fn json_report_shape() {
    let sandbox = Sandbox::new();
    let run = sandbox.apply(&["--dry-run", "--detailed-exitcode", "--format", "json"]);
    assert_eq!(run.code, Some(2), "{run}");
    let report = run.json();

    assert_eq!(report["changed"], true);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["apps"][0]["name"], "sales");
    let resources = report["apps"][0]["resources"].as_array().expect("resources is a list");
    assert!(!resources.is_empty(), "no resources in {report}");
    for resource in resources {
        for key in ["kind", "id", "action"] {
            assert!(resource[key].as_str().is_some_and(|v| !v.is_empty()), "resource without a {key}: {resource}");
        }
    }
    let find = |id: &str| {
        resources
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no resource {id} in {resources:#?}"))
    };
    assert_eq!(find("mx-sales")["kind"], "user");
    assert_eq!(find("mx-sales")["action"], "create");

    for secret_file in ["/srv/mendix/sales/.m2ee/mxharden.yaml", "/var/lib/mxharden/apps/sales.json"] {
        let resource = find(secret_file);
        assert_eq!(resource["kind"], "file");
        assert_eq!(resource["action"], "create");
        let diff = resource["diff"].as_str().expect("a diff string");
        let body = diff.lines().nth(2).unwrap_or_default();
        assert!(body.starts_with("(contents hidden: holds a secret)"), "{secret_file}: {diff}");
        assert!(!diff.contains("admin_pass"), "{secret_file}: {diff}");
    }
    assert_eq!(find("/srv/mendix/sales/.m2ee/mxharden.yaml")["secret"], true);

    let site = find("/etc/nginx/conf.d/mxharden-sales.conf");
    assert!(site["diff"].as_str().is_some_and(|d| d.contains("+        proxy_set_header X-Forwarded-Scheme https;")), "{site}");
}

/// Writes `text` as desired-state file `name`. Returns its path and the
/// 1-based line and column of `token` on the first line that contains `line_marker`.
fn spec_with_marker(sandbox: &Sandbox, name: &str, text: &str, line_marker: &str, token: &str) -> (PathBuf, usize, usize) {
    let path = sandbox.write_spec(name, text);
    let (line_index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(line_marker))
        .unwrap_or_else(|| panic!("{line_marker:?} is not in {name}"));
    let column = line.find(token).unwrap_or_else(|| panic!("{token:?} is not on line {line:?}")) + 1;
    (path, line_index + 1, column)
}

/// One invalid input: the files to pass, and where and on which field the
/// error must point.
struct BadInput {
    label: &'static str,
    files: Vec<PathBuf>,
    location: String,
    field: &'static str,
}

fn bad_inputs(sandbox: &Sandbox) -> Vec<BadInput> {
    let spec = example_spec();
    let mut cases = Vec::new();
    let mut add = |label: &'static str, text: String, (line_marker, token): (&str, &str), field: &'static str| {
        let (path, line, column) = spec_with_marker(sandbox, &format!("{label}.yaml"), &text, line_marker, token);
        cases.push(BadInput {
            label,
            location: format!("{}:{line}:{column}:", path.display()),
            files: vec![path],
            field,
        });
    };
    add("unknown-key", spec.replace("  firewall:", "  colour: red\n  firewall:"), ("colour: red", "colour"), "app.colour");
    add("yes-string", spec.replace("  name: sales\n", "  name: sales\n  user: yes\n"), ("user: yes", "yes"), "app.user");
    add("duplicate-key", spec.replace("    port: 8000\n", "    port: 8000\n    port: 8001\n"), ("port: 8001", "port"), "app.runtime");
    add("port-80", spec.replace("port: 8000", "port: 80"), ("    port: 80", "80"), "app.runtime.port");
    add("same-ports", spec.replace("admin_port: 8090", "admin_port: 8000"), ("admin_port: 8000", "8000"), "app.runtime.admin_port");

    let other = spec
        .replace("name: sales", "name: crm")
        .replace("/srv/mendix/sales", "/srv/mendix/crm")
        .replace("server_name: sales.example.com", "server_name: crm.example.com")
        .replace("admin_port: 8090", "admin_port: 8091");
    let (first, ..) = spec_with_marker(sandbox, "shared-port-sales.yaml", &spec, "    port: 8000", "8000");
    let (second, line, column) = spec_with_marker(sandbox, "shared-port-crm.yaml", &other, "    port: 8000", "8000");
    cases.push(BadInput {
        label: "shared-port",
        location: format!("{}:{line}:{column}:", second.display()),
        files: vec![first, second],
        field: "app.runtime.port",
    });
    cases
}

#[test]
fn bad_input_rejected() {
    let sandbox = Sandbox::new();
    let cases = bad_inputs(&sandbox);
    let before = snapshot_tree(&sandbox.root());
    for case in &cases {
        let files: Vec<&Path> = case.files.iter().map(PathBuf::as_path).collect();
        for options in [&["apply"][..], &["apply", "--dry-run"]] {
            let run = sandbox.run(options, &files);
            let label = format!("{} ({options:?})", case.label);
            assert_eq!(run.code, Some(1), "{label}:\n{run}");
            let error_line = run
                .stderr
                .lines()
                .find(|line| line.contains(&case.location))
                .unwrap_or_else(|| panic!("{label}: stderr does not name {}:\n{run}", case.location));
            let after_location = &error_line[error_line.find(&case.location).expect("found above") + case.location.len()..];
            assert!(after_location.trim_start().starts_with(case.field), "{label}: expected field {} after the location:\n{run}", case.field);
            assert_same_tree(&before, &snapshot_tree(&sandbox.root()), &label);
        }
    }
}

#[test]
fn bad_input_field_path_exact() {
    let sandbox = Sandbox::new();
    for case in bad_inputs(&sandbox) {
        let files: Vec<&Path> = case.files.iter().map(PathBuf::as_path).collect();
        let run = sandbox.run(&["apply", "--dry-run"], &files);
        let expected = format!("{} {}:", case.location, case.field);
        assert!(run.stderr.contains(&expected), "{}: expected {expected:?}:\n{run}", case.label);
    }
}

#[test]
fn old_runtime_rejected() {
    let sandbox = Sandbox::new();
    sandbox.write("srv/mendix/sales/model/metadata.json", OLD_RUNTIME_METADATA);
    let before = sandbox.snapshot();

    for options in [&[][..], &["--dry-run"]] {
        let run = sandbox.apply(options);
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.stderr.contains("runtime 9.24.1 is below 9.24.34"), "{run}");
        assert!(run.stderr.contains("waiver"), "the message does not name the way out:\n{run}");
        assert_same_tree(&before, &sandbox.snapshot(), &format!("apply {options:?}"));
    }
    assert!(!passwd_exists(&sandbox, "mx-sales"), "the account was created");
}

fn passwd_exists(sandbox: &Sandbox, name: &str) -> bool {
    sandbox.read("etc/passwd").lines().any(|line| line.starts_with(&format!("{name}:")))
}

const WAIVER_REASON: &str = "Upgrade to 9.24.34 is planned for the next release window; approved by the app owner";

fn spec_with_waiver(expires: &str) -> String {
    format!(
        "{}  waivers:\n    - check: runtime-version\n      reason: \"{WAIVER_REASON}\"\n      expires: {expires}\n",
        example_spec()
    )
}

#[test]
fn waiver_accepts_old_runtime() {
    let sandbox = Sandbox::new();
    sandbox.write("srv/mendix/sales/model/metadata.json", OLD_RUNTIME_METADATA);
    sandbox.write_spec("app.yaml", &spec_with_waiver("2999-12-31"));

    let text = sandbox.apply(&["--dry-run"]);
    assert_eq!(text.code, Some(0), "{text}");
    assert!(text.stdout.contains(&format!("runtime: 9.24.1: below-minimum, waived: {WAIVER_REASON}")), "{text}");
    assert!(text.stdout.contains("warning: runtime 9.24.1 is refused by the policy but waived"), "{text}");

    let run = sandbox.apply_ok(&["--format", "json"]);
    let app = &run.json()["apps"][0];
    assert_eq!(app["runtime"]["waived_because"], WAIVER_REASON, "{run}");
    assert_eq!(app["runtime"]["verdict"]["minimum"], "9.24.34", "{run}");
    assert!(passwd_exists(&sandbox, "mx-sales"), "the waived app was not applied");
}

#[test]
fn expired_waiver_rejected() {
    let sandbox = Sandbox::new();
    sandbox.write("srv/mendix/sales/model/metadata.json", OLD_RUNTIME_METADATA);
    let text = spec_with_waiver("2020-01-31");
    let (spec, line, column) = spec_with_marker(&sandbox, "app.yaml", &text, "expires: 2020-01-31", "2020-01-31");
    let before = sandbox.snapshot();

    let run = sandbox.apply(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    let expected = format!("{}:{line}:{column}: app.waivers[0].expires: the waiver expired on 2020-01-31", spec.display());
    assert!(run.stderr.contains(&expected), "expected {expected:?}:\n{run}");
    assert_same_tree(&before, &sandbox.snapshot(), "expired waiver");
}

#[test]
fn login_account_rejected() {
    let sandbox = Sandbox::new();
    let passwd = sandbox.read("etc/passwd");
    sandbox.write("etc/passwd", &format!("{passwd}mx-sales:x:1001:1001::/srv/mendix/sales:/bin/bash\n"));
    let group = sandbox.read("etc/group");
    sandbox.write("etc/group", &format!("{group}mx-sales:x:1001:\n"));
    let before = sandbox.snapshot();

    let run = sandbox.apply(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("account mx-sales exists"), "{run}");
    assert!(run.stderr.contains("its shell is /bin/bash, expected /usr/sbin/nologin"), "{run}");
    assert!(run.stderr.contains("usermod"), "the message does not say how to fix it:\n{run}");
    assert_same_tree(&before, &sandbox.snapshot(), "existing login account");
}

/// A folder outside every sandbox with a file in it, both owned by root
/// with group and other bits set, for links to point at.
struct Canary {
    folder: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        let folder = tempfile::tempdir().expect("create the canary folder");
        std::fs::write(folder.path().join("secret.txt"), "canary contents\n").expect("write the canary file");
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod the canary");
        std::fs::set_permissions(folder.path().join("secret.txt"), std::fs::Permissions::from_mode(0o644)).expect("chmod the canary file");
        Canary { folder }
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }

    fn file(&self) -> PathBuf {
        self.path().join("secret.txt")
    }

    fn snapshot(&self) -> Tree {
        snapshot_tree(self.path())
    }
}

fn replace_with_link(sandbox: &Sandbox, relative: &str, target: &Path) {
    let path = sandbox.path(relative);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path).expect("remove the folder"),
        Ok(_) => std::fs::remove_file(&path).expect("remove the file"),
        Err(_) => {}
    }
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the parent");
    std::os::unix::fs::symlink(target, &path).expect("plant the link");
}

#[test]
fn data_link_not_followed() {
    let canary = Canary::new();
    let sandbox = Sandbox::new();
    replace_with_link(&sandbox, "srv/mendix/sales/data", canary.path());
    let before = canary.snapshot();

    for options in [&["--dry-run"][..], &[]] {
        let run = sandbox.apply(options);
        assert_eq!(run.code, Some(1), "apply {options:?}:\n{run}");
        assert!(run.stderr.contains("srv/mendix/sales/data is a symbolic link"), "{run}");
        assert_same_tree(&before, &canary.snapshot(), &format!("canary after apply {options:?}"));
    }
}

/// A link planted in the sandbox: where, whether it points at the canary's
/// file (else its folder), and whether apply must stop. A link in a folder
/// that mxharden manages stops the run; a link inside `data/` is left alone.
struct PlantedLink {
    path: &'static str,
    to_file: bool,
    stops: bool,
}

const PLANTED_LINKS: &[PlantedLink] = &[
    PlantedLink { path: "srv/mendix/sales/model", to_file: false, stops: true },
    PlantedLink { path: "srv/mendix/sales/web", to_file: false, stops: true },
    PlantedLink { path: "srv/mendix/sales/.m2ee", to_file: false, stops: true },
    PlantedLink { path: "srv/mendix/sales/.m2ee/mxharden.yaml", to_file: true, stops: true },
    PlantedLink { path: "srv/mendix/sales/.m2ee/m2ee.yaml", to_file: true, stops: true },
    PlantedLink { path: "srv/mendix/sales/model/metadata.json", to_file: true, stops: true },
    PlantedLink { path: "srv/mendix/sales/data/files", to_file: false, stops: false },
    PlantedLink { path: "srv/mendix/sales/data/report.txt", to_file: true, stops: false },
];

#[test]
fn planted_links_not_followed() {
    for link in PLANTED_LINKS {
        let canary = Canary::new();
        let sandbox = Sandbox::new();
        let target = if link.to_file { canary.file() } else { canary.path().to_path_buf() };
        replace_with_link(&sandbox, link.path, &target);
        let before = canary.snapshot();

        let run = sandbox.apply(&[]);
        if link.stops {
            assert_eq!(run.code, Some(1), "{}:\n{run}", link.path);
            assert!(run.stderr.contains("symbolic link"), "{}: the error does not name the link:\n{run}", link.path);
        } else {
            assert_eq!(run.code, Some(0), "{}:\n{run}", link.path);
        }
        assert_same_tree(&before, &canary.snapshot(), &format!("canary behind {}", link.path));
        let planted = std::fs::symlink_metadata(sandbox.path(link.path)).expect("the link is still there");
        assert!(planted.file_type().is_symlink(), "{} was replaced", link.path);
    }
}

#[test]
fn hard_link_not_changed() {
    let canary = Canary::new();
    let sandbox = Sandbox::new();
    std::fs::hard_link(canary.file(), sandbox.path("srv/mendix/sales/data/linked.txt")).expect("hard-link the canary file");
    let before = canary.snapshot();

    let run = sandbox.apply_ok(&["--format", "json"]);
    assert_same_tree(&before, &canary.snapshot(), "canary hard-linked into data");
    let skipped = run.json()["apps"][0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["kind"] == "tree")
        .flat_map(|r| r["skipped"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["path"].as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    assert!(skipped.iter().any(|path| path.ends_with("data/linked.txt")), "not reported as skipped: {skipped:?}\n{run}");
}

#[test]
fn nginx_app_has_no_iis_folder() {
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    assert!(!sandbox.path("etc/mxharden/iis").exists(), "an nginx app got an IIS folder");
}

#[test]
fn apply_reports_verification() {
    let sandbox = Sandbox::new();
    let run = sandbox.apply_ok(&[]);
    for check in ["converged", "m2ee.admin_pass", "mxruntime.DTAPMode", "m2ee.admin_listen_addresses"] {
        assert!(run.stdout.contains(&format!("verify ok: {check}:")), "{check} not verified:\n{run}");
    }
}

/// Returns a sandbox whose m2ee.yaml lists, after mxharden's file, an
/// include that sets development mode.
fn sandbox_with_development_include() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("srv/mendix/sales/.m2ee")).unwrap();
    sandbox.write(
        MAIN_FILE,
        "include:\n  - /srv/mendix/sales/.m2ee/mxharden.yaml\n  - /srv/mendix/sales/.m2ee/local.yaml\n",
    );
    sandbox.write("srv/mendix/sales/.m2ee/local.yaml", "mxruntime:\n  DTAPMode: D\n");
    sandbox
}

#[test]
fn later_include_override_fails_verification() {
    let sandbox = sandbox_with_development_include();
    let run = sandbox.apply(&[]);
    assert_eq!(run.code, Some(1), "a later include that sets development mode must fail:\n{run}");
    assert!(run.stderr.contains("verification failed"), "{run}");
    assert!(run.stderr.contains("mxruntime.DTAPMode"), "{run}");
}

/// Unused uid and gid for running the binary as an ordinary user.
const NOBODY: &str = "65534";

#[test]
fn dry_run_works_without_root() {
    let sandbox = Sandbox::new();
    let status = Command::new("chown").arg("-R").arg(format!("{NOBODY}:{NOBODY}")).arg(sandbox.folder.path()).status().unwrap();
    assert!(status.success());
    std::fs::set_permissions(sandbox.folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = sandbox.snapshot();
    let binary = assert_cmd::cargo::cargo_bin!("mxharden");
    let output = Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(binary)
        .args(["apply", "--dry-run", "--root"])
        .arg(sandbox.root())
        .arg(sandbox.spec("app.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dry run as an ordinary user failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("+ user mx-sales"), "{stdout}");
    assert!(stdout.contains("check skipped: nginx -t needs root"), "{stdout}");
    assert_same_tree(&before, &sandbox.snapshot(), "dry run as an ordinary user");
}

#[test]
fn tree_reports_entries_left_alone() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("srv/mendix/sales/data");
    std::os::unix::fs::symlink("/etc/hostname", data.join("link-to-host-file")).unwrap();
    let fifo = data.join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let run = sandbox.apply_ok(&["--dry-run"]);
    assert!(run.stdout.contains("left alone: 1 symbolic links"), "{run}");
    assert!(run.stdout.contains(&format!("left alone: {}: a special file is neither", fifo.display())), "{run}");
    let json = sandbox.apply_ok(&["--dry-run", "--format", "json"]).json();
    let tree = json["apps"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "tree" && r["id"] == "/srv/mendix/sales/data")
        .cloned()
        .expect("a tree resource for data/");
    assert_eq!(tree["links"], 1, "{tree}");
    assert_eq!(tree["skipped"].as_array().map(Vec::len), Some(1), "{tree}");
}

#[test]
fn plan_lines_are_unique() {
    let sandbox = Sandbox::new();
    let text = example_spec().replace("backend: nftables", "backend: iptables");
    sandbox.write_spec("app.yaml", &text);
    let run = sandbox.apply(&["--dry-run"]);
    assert_eq!(run.code, Some(0), "{run}");
    let plan_lines: Vec<&str> = run.stdout.lines().filter(|line| line.starts_with("  + ") || line.starts_with("  ~ ")).collect();
    let mut seen = std::collections::BTreeSet::new();
    for line in &plan_lines {
        assert!(seen.insert(*line), "the plan lists {line:?} twice:\n{run}");
    }
}

#[test]
fn database_password_not_printed_without_newline() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("srv/mendix/sales/.m2ee")).unwrap();
    sandbox.write(MAIN_FILE, "mxruntime:\n  DatabaseHost: db:5432\n  DatabasePassword: \"hunter2-db-secret\"");
    for options in [&["--dry-run"][..], &["--dry-run", "--format", "json"][..]] {
        let run = sandbox.apply_ok(options);
        assert!(!run.output().contains("hunter2-db-secret"), "the database password was printed:\n{run}");
        assert!(run.output().contains("lines appended by mxharden"), "{run}");
    }
}

#[test]
fn account_with_password_rejected() {
    let sandbox = Sandbox::new();
    let passwd = sandbox.read("etc/passwd");
    sandbox.write("etc/passwd", &format!("{passwd}mx-sales:x:990:990::/srv/mendix/sales:/usr/sbin/nologin\n"));
    let group = sandbox.read("etc/group");
    sandbox.write("etc/group", &format!("{group}mx-sales:x:990:\n"));
    sandbox.write("etc/shadow", "mx-sales:$6$salt$hash:19000:0:99999:7:::\n");
    let before = sandbox.snapshot();
    let run = sandbox.apply(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("it has a password in /etc/shadow"), "{run}");
    assert_same_tree(&before, &sandbox.snapshot(), "account with a password");
}

#[test]
fn unsafe_m2ee_append_rejected_before_changes() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("srv/mendix/sales/.m2ee")).unwrap();
    sandbox.write(MAIN_FILE, "mxruntime:\n  DatabaseHost: db\n...\n");
    let before = sandbox.snapshot();
    let run = sandbox.apply(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("cannot append its include entry"), "{run}");
    assert_same_tree(&before, &sandbox.snapshot(), "m2ee.yaml ending with a document end marker");
}

#[test]
fn failed_run_reports_one_json_document() {
    let sandbox = sandbox_with_development_include();
    let run = sandbox.apply(&["--format", "json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let report = run.json();
    assert_eq!(report["changed"], Value::Bool(true), "{run}");
    assert_eq!(report["failed"], Value::Bool(true), "{run}");
    assert!(report["msg"].as_str().unwrap_or_default().contains("verification failed"), "{run}");
}

#[test]
fn changed_template_value_rejected() {
    let sandbox = Sandbox::new();
    let templates = sandbox.folder.path().join("templates");
    std::fs::create_dir_all(templates.join("m2ee")).unwrap();
    let built_in = std::fs::read_to_string(repository_root().join("templates/m2ee/mxharden.yaml.tera")).unwrap();
    std::fs::write(templates.join("m2ee/mxharden.yaml.tera"), built_in.replace("DTAPMode: \"P\"", "DTAPMode: \"D\"")).unwrap();
    let before = sandbox.snapshot();
    let run = sandbox.apply(&["--templates", templates.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("DTAPMode"), "{run}");
    assert_same_tree(&before, &sandbox.snapshot(), "a template that sets development mode");
}

#[test]
fn usage_error_exits_one() {
    let sandbox = Sandbox::new();
    let run = sandbox.apply(&["--detailed-exitcode", "--no-such-option"]);
    assert_eq!(run.code, Some(1), "{run}");
}

#[test]
fn privileged_group_name_rejected() {
    let sandbox = Sandbox::new();
    let text = example_spec().replace("  name: sales\n", "  name: sales\n  user: sudo\n");
    sandbox.write_spec("app.yaml", &text);
    let run = sandbox.apply(&["--dry-run"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("app.user"), "{run}");
}

#[test]
fn out_of_support_line_warned() {
    let sandbox = Sandbox::new();
    sandbox.write("srv/mendix/sales/model/metadata.json", r#"{"RuntimeVersion": "4.3.0", "Constants": []}"#);
    let run = sandbox.apply_ok(&["--dry-run"]);
    assert!(run.stdout.contains("warning: runtime 4.3.0 has its known fixes, but release line 4 receives no more security fixes"), "{run}");
}
