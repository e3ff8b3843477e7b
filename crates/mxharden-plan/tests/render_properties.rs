//! Property tests: values that validation accepts render into files that
//! `nginx -t`, `nft -c` and an XML parser accept, with each value exactly
//! where the template puts it.
//!
//! Each case writes a desired-state file from generated values (every value
//! as a JSON string, which YAML reads as a double-quoted scalar, so any
//! character reaches validation), parses and resolves it as `mxharden`
//! does, and checks what validation accepted. Generated values mix
//! well-formed values with values holding delimiters of the generated
//! formats (`;`, `{`, `}`, quotes, `#`, `$`, `%`, newlines, spaces).
//!
//! `nft -c` runs inside a new network namespace through the product's own
//! checker, so it needs root. Without root these tests skip, except under
//! `CI=true`, where they fail. They need nginx, nftables, openssl and
//! util-linux.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mxharden_plan::checks::{CheckOutcome, check_nft_rules, check_nginx_site};
use mxharden_render::{AdminPassword, Artifact, ArtifactKind, Engine, RenderContext};
use mxharden_spec::AppSpec;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

/// Characters that end a directive, open a block, quote, comment, expand or
/// start a new line in one of the generated formats.
const DELIMITERS: &[char] = &[';', '{', '}', '"', '\'', '#', '$', '%', '\n', '\r', ' ', '\t', '\\', '<', '>', '&', '`', ':', '*', '\0'];

/// Values of one generated app.
#[derive(Debug, Clone)]
struct Values {
    name: String,
    base: String,
    server_name: String,
    certificate: String,
    key: String,
    m2ee: String,
    root_path: String,
    runtime_port: u16,
    admin_port: u16,
    /// A remote proxy network and the runtime's own non-loopback address.
    remote: Option<(String, String)>,
    iis: bool,
}

/// Share of generated values that get a delimiter inserted. With seven
/// string values, about half of the generated apps hold none.
const HOSTILE_SHARE: f64 = 0.1;

/// Fewest generated apps that validation must accept, of [`CASES`].
const MIN_ACCEPTED: usize = 24;

/// Generated apps per run.
const CASES: u32 = 96;

/// Generates a string from `well_formed`, sometimes with one delimiter inserted.
fn maybe_hostile(well_formed: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (well_formed, any::<prop::sample::Index>(), prop::sample::select(DELIMITERS), prop::bool::weighted(HOSTILE_SHARE)).prop_map(
        |(text, index, delimiter, hostile)| {
            if !hostile {
                return text;
            }
            let mut chars: Vec<char> = text.chars().collect();
            let at = index.index(chars.len() + 1);
            chars.insert(at, delimiter);
            chars.into_iter().collect()
        },
    )
}

fn path_strategy(top: &'static str) -> impl Strategy<Value = String> {
    maybe_hostile(prop::collection::vec("[A-Za-z0-9._+@-]{1,10}", 1..4).prop_map(move |parts| format!("{top}/{}", parts.join("/"))))
}

/// Formats the network `a.b.c.9/prefix` with its host bits cleared.
fn network(a: u8, b: u8, c: u8, prefix: u8) -> String {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(a, b, c, 9)) & mask);
    format!("{address}/{prefix}")
}

fn values_strategy() -> impl Strategy<Value = Values> {
    let name = maybe_hostile("[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5}){0,2}");
    let base = path_strategy("/srv/mendix");
    let server_name = maybe_hostile("[a-z0-9]{1,8}(-[a-z0-9]{1,4})?(\\.[a-z0-9]{1,8}){0,2}\\.[a-z]{2,6}");
    let certificate = path_strategy("/etc/ssl/certs");
    let key = path_strategy("/etc/ssl/private");
    let m2ee = path_strategy("/opt/m2ee");
    let root_path = maybe_hostile("(/[A-Za-z0-9._~-]{0,8}){0,3}");
    let remote = prop::option::of((1u8..127, 0u8..=255, 0u8..=255, 8u8..=32, 1u8..127, 0u8..=255))
        .prop_map(|remote| remote.map(|(a, b, c, prefix, x, y)| (network(a, b, c, prefix), format!("{x}.{y}.0.2"))));
    (name, base, server_name, certificate, key, m2ee, root_path, 1024u16.., 1024u16.., remote, any::<bool>()).prop_map(
        |(name, base, server_name, certificate, key, m2ee, root_path, runtime_port, admin_port, remote, iis)| Values {
            name,
            base,
            server_name,
            certificate,
            key,
            m2ee,
            root_path,
            runtime_port,
            admin_port,
            remote,
            iis,
        },
    )
}

fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("a string serializes")
}

fn desired_state(values: &Values) -> String {
    let mut text = format!(
        "version: 1\napp:\n  name: {}\n  base: {}\n  runtime:\n    port: {}\n    admin_port: {}\n    root_url: {}\n",
        quoted(&values.name),
        quoted(&values.base),
        values.runtime_port,
        values.admin_port,
        quoted(&format!("https://{}{}", values.server_name, values.root_path)),
    );
    if let Some((_, listen)) = &values.remote {
        text.push_str(&format!("    listen: [{}]\n", quoted(listen)));
    }
    text.push_str(&format!(
        "  proxy:\n    kind: {}\n    server_name: {}\n    tls:\n      certificate: {}\n      key: {}\n",
        if values.iis { "iis" } else { "nginx" },
        quoted(&values.server_name),
        quoted(&values.certificate),
        quoted(&values.key),
    ));
    if let Some((network, _)) = &values.remote {
        text.push_str(&format!("    remote_addresses: [{}]\n", quoted(network)));
    }
    text.push_str(&format!("  service:\n    m2ee: {}\n", quoted(&values.m2ee)));
    text
}

/// Parses and resolves `values` as `mxharden` does; `None` when validation rejects them.
fn validate(values: &Values) -> Option<AppSpec> {
    let file = Path::new("generated.yaml");
    let state = mxharden_spec::parse::parse_desired_state(file, &desired_state(values)).ok()?;
    mxharden_spec::resolve::resolve_app(file, state, mxharden_spec::today_utc()).ok()
}

fn has_delimiter(text: &str) -> bool {
    text.chars().any(|c| DELIMITERS.contains(&c))
}

/// A certificate and key made once, copied to each case's generated paths.
struct TestPki {
    _folder: tempfile::TempDir,
    certificate: PathBuf,
    key: PathBuf,
}

fn test_pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let certificate = folder.path().join("cert.pem");
        let key = folder.path().join("key.pem");
        let status = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7"])
            .args(["-subj", "/CN=generated.example.com"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl failed to make a test certificate");
        TestPki {
            _folder: folder,
            certificate,
            key,
        }
    })
}

/// Tells whether the tool checks can run; panics under `CI=true` when they cannot.
fn tools_available() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: the render property tests need root for nft -c");
    eprintln!("SKIPPED render properties: not running as root, so nft -c cannot run in a new network namespace");
    false
}

fn render(app: &AppSpec) -> (Engine, RenderContext, Vec<Artifact>) {
    let engine = Engine::load(None).expect("built-in templates load");
    let context = RenderContext::new(app, None);
    let password = AdminPassword::new("p".repeat(48));
    let artifacts = mxharden_render::render_app(&engine, app, &context, &password).expect("a validated app renders");
    (engine, context, artifacts)
}

fn artifact(artifacts: &[Artifact], kind: ArtifactKind) -> &Artifact {
    artifacts.iter().find(|a| a.kind == kind).expect("the artifact is rendered")
}

/// Returns the arguments of every line `directive ...;` in an nginx file.
fn nginx_directives<'a>(site: &'a str, directive: &str) -> Vec<&'a str> {
    site.lines()
        .filter_map(|line| line.trim().strip_prefix(directive)?.strip_prefix(' ')?.strip_suffix(';'))
        .collect()
}

fn check_nginx(app: &AppSpec, engine: &Engine, context: &RenderContext, artifacts: &[Artifact]) -> Result<(), TestCaseError> {
    let site = &artifact(artifacts, ArtifactKind::NginxSite).contents;
    prop_assert_eq!(nginx_directives(site, "server_name"), vec![app.server_name.as_str(); 2]);
    prop_assert_eq!(nginx_directives(site, "ssl_certificate"), vec![app.tls_certificate.as_str()]);
    prop_assert_eq!(nginx_directives(site, "ssl_certificate_key"), vec![app.tls_key.as_str()]);
    let web = format!("{}/web", app.base);
    prop_assert_eq!(nginx_directives(site, "root"), vec![web.as_str()]);
    let redirect = format!("301 https://{}$request_uri", app.server_name);
    // The other `return` directives answer 404 for denied paths.
    let redirects: Vec<&str> = nginx_directives(site, "return").into_iter().filter(|r| r.starts_with("301")).collect();
    prop_assert_eq!(redirects, vec![redirect.as_str()]);

    // nginx -t reads the certificate and key, so they are placed at their
    // generated paths beneath a private prefix.
    let prefix = tempfile::tempdir().expect("a temporary folder");
    for (path, source) in [(&app.tls_certificate, &test_pki().certificate), (&app.tls_key, &test_pki().key)] {
        let target = prefix.path().join(path.relative());
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create the folder");
        std::fs::copy(source, &target).expect("copy the test PKI");
    }
    let prefix_text = prefix.path().display().to_string();
    let check_copy = mxharden_render::render_nginx_check_copy(engine, context, &prefix_text).expect("the check copy renders");
    let shared = engine.render("nginx/http.conf.tera", context).expect("the shared http file renders");
    match check_nginx_site(&[shared.as_str(), check_copy.as_str()], true) {
        Ok(CheckOutcome::Passed(_)) => Ok(()),
        other => Err(TestCaseError::fail(format!("nginx -t did not pass: {other:?}\n{check_copy}"))),
    }
}

fn check_nft(app: &AppSpec, artifacts: &[Artifact]) -> Result<(), TestCaseError> {
    let rules = &artifact(artifacts, ArtifactKind::NftRules).contents;
    let table = format!("mxharden_{}", app.name.as_str().replace('-', "_"));
    prop_assert!(rules.contains(&format!("\ntable inet {table} {{\n")), "table {} is missing:\n{}", table, rules);
    let sources: Vec<&str> = rules.lines().filter_map(|line| line.trim().strip_prefix("ip saddr ")?.split(' ').next()).collect();
    let expected: Vec<String> = app.remote_addresses.iter().map(ToString::to_string).collect();
    prop_assert_eq!(sources, expected.iter().map(String::as_str).collect::<Vec<_>>());
    match check_nft_rules(rules, false) {
        Ok(CheckOutcome::Passed(_)) => Ok(()),
        other => Err(TestCaseError::fail(format!("nft -c did not pass: {other:?}\n{rules}"))),
    }
}

fn check_xml(app: &AppSpec, artifacts: &[Artifact]) -> Result<(), TestCaseError> {
    let text = &artifact(artifacts, ArtifactKind::IisWebConfig).contents;
    let document = roxmltree::Document::parse(text).map_err(|e| TestCaseError::fail(format!("invalid XML: {e}\n{text}")))?;
    let urls: Vec<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("action"))
        .filter_map(|node| node.attribute("url"))
        .collect();
    let redirect = format!("https://{}/{{R:1}}", app.server_name);
    prop_assert_eq!(urls.first().copied(), Some(redirect.as_str()));
    Ok(())
}

fn check_systemd_and_m2ee(app: &AppSpec, artifacts: &[Artifact]) -> Result<(), TestCaseError> {
    let unit = &artifact(artifacts, ArtifactKind::SystemdUnit).contents;
    let values = |key: &str| -> Vec<&str> { unit.lines().filter_map(|line| line.strip_prefix(key)).collect() };
    prop_assert_eq!(values("User="), vec![app.user.as_str()]);
    prop_assert_eq!(values("WorkingDirectory="), vec![app.base.as_str()]);
    let start = format!("{} --yolo start", app.m2ee);
    prop_assert_eq!(values("ExecStart="), vec![start.as_str()]);

    let m2ee = &artifact(artifacts, ArtifactKind::M2eeInclude).contents;
    let parsed: serde_json::Value = serde_saphyr::from_str(m2ee).map_err(|e| TestCaseError::fail(format!("invalid YAML: {e}\n{m2ee}")))?;
    prop_assert_eq!(&parsed["m2ee"]["app_base"], &serde_json::json!(app.base.as_str()));
    prop_assert_eq!(&parsed["m2ee"]["runtime_port"], &serde_json::json!(app.runtime_port.get()));
    prop_assert_eq!(&parsed["mxruntime"]["ApplicationRootUrl"], &serde_json::json!(app.root_url.as_str()));
    Ok(())
}

/// Validates `values` and, when validation accepts them, checks the rendered
/// files. Returns whether validation accepted them.
fn check_values(values: &Values) -> Result<bool, TestCaseError> {
    let Some(app) = validate(values) else {
        return Ok(false);
    };
    let checked = [app.name.as_str(), app.base.as_str(), app.server_name.as_str(), app.tls_certificate.as_str(), app.tls_key.as_str(), app.m2ee.as_str()];
    for value in checked {
        prop_assert!(!has_delimiter(value), "validation accepted a delimiter in {:?}", value);
    }
    let (engine, context, artifacts) = render(&app);
    if values.iis {
        check_xml(&app, &artifacts)?;
    } else {
        check_nginx(&app, &engine, &context, &artifacts)?;
    }
    check_nft(&app, &artifacts)?;
    check_systemd_and_m2ee(&app, &artifacts)?;
    Ok(true)
}

/// Whatever validation accepts renders into files that their tools accept,
/// with each value in its place.
#[test]
fn accepted_values_render_to_valid_files() {
    if !tools_available() {
        return;
    }
    let accepted = AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&values_strategy(), |values| {
        if check_values(&values)? {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // Guards against a validation or generator change that rejects nearly
    // every app, which would make the property pass without rendering.
    let accepted = accepted.into_inner();
    assert!(accepted >= MIN_ACCEPTED, "validation accepted {accepted} of {CASES} generated apps, expected at least {MIN_ACCEPTED}");
}

/// Returns a well-formed app, the starting point of the exhaustive test.
fn well_formed() -> Values {
    Values {
        name: "sales-eu".into(),
        base: "/srv/mendix/sales-eu".into(),
        server_name: "sales-eu.example.com".into(),
        certificate: "/etc/ssl/certs/sales.pem".into(),
        key: "/etc/ssl/private/sales.key".into(),
        m2ee: "/opt/m2ee/bin/m2ee".into(),
        root_path: "/app".into(),
        runtime_port: 8000,
        admin_port: 8090,
        remote: Some(("10.1.0.0/16".into(), "10.2.0.2".into())),
        iis: false,
    }
}

/// Every delimiter at the start, middle and end of every string value is
/// either rejected or rendered safely. Random generation alone would reach
/// each combination only rarely.
#[test]
fn every_delimiter_in_every_value() {
    if !tools_available() {
        return;
    }
    assert!(check_values(&well_formed()).expect("the well-formed app renders"), "the well-formed app is rejected");
    let slots: [fn(&mut Values) -> &mut String; 7] = [
        |v| &mut v.name,
        |v| &mut v.base,
        |v| &mut v.server_name,
        |v| &mut v.certificate,
        |v| &mut v.key,
        |v| &mut v.m2ee,
        |v| &mut v.root_path,
    ];
    let mut failures = Vec::new();
    for (slot_index, slot) in slots.iter().enumerate() {
        for delimiter in DELIMITERS {
            for iis in [false, true] {
                let length = slot(&mut well_formed()).chars().count();
                for at in [1, length / 2, length] {
                    let mut values = well_formed();
                    values.iis = iis;
                    let value = slot(&mut values);
                    let mut chars: Vec<char> = value.chars().collect();
                    chars.insert(at, *delimiter);
                    *value = chars.into_iter().collect();
                    if let Err(error) = check_values(&values) {
                        failures.push(format!("value {slot_index} with {delimiter:?} at {at}: {error}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Values without delimiters in the well-formed shapes are accepted.
    #[test]
    fn well_formed_values_are_accepted(
        name in "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5}){0,2}",
        label in "[a-z][a-z0-9]{0,8}",
        port in 1024u16..30000,
    ) {
        let values = Values {
            name: name.clone(),
            base: format!("/srv/mendix/{name}"),
            server_name: format!("{label}.example.com"),
            certificate: "/etc/ssl/certs/app.pem".into(),
            key: "/etc/ssl/private/app.key".into(),
            m2ee: "/opt/m2ee/bin/m2ee".into(),
            root_path: "/app".into(),
            runtime_port: port,
            admin_port: port + 1,
            remote: Some(("10.1.0.0/16".into(), "10.2.0.2".into())),
            iis: false,
        };
        prop_assert!(validate(&values).is_some(), "{}", desired_state(&values));
    }
}
