//! Tests of the built-in templates. A lint checks their expressions, and a
//! second check finds every variable they name in the render context.
//! Snapshots cover every file rendered for `examples/app.yaml`. The files'
//! own tools (`nginx -t`, `nft -c`, an XML parser) check the rendered output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mxharden_plan::checks::{CheckOutcome, check_nft_rules, check_nginx_site};
use mxharden_render::{AdminPassword, Artifact, ArtifactKind, BUILT_IN_TEMPLATES, Engine, RenderContext, render_app, render_m2ee_main};
use mxharden_spec::AppSpec;
use mxharden_testkit::spec::{example_app, load_app, try_load_app};
use mxharden_testkit::write_self_signed_certificate;
use serde_json::Value;

/// Runtime version named by `examples/root/srv/mendix/sales/model/metadata.json`.
const EXAMPLE_RUNTIME_VERSION: &str = "10.24.3.75271";

/// A fixed admin password, so snapshots are stable. It is 48 characters
/// long, like a generated one.
const TEST_PASSWORD: &str = "TestOnlyAdminPassword0123456789abcdefghijklmnopq";

/// A desired state that sets every optional field, so the context built from
/// it contains every value a template can use.
const MAXIMAL_APP: &str = r#"version: 1
app:
  name: sales-eu
  base: /srv/mendix/sales-eu
  user: mx-sales-eu
  runtime:
    port: 8000
    admin_port: 8090
    listen: ["127.0.0.1", "::1", "192.0.2.10", "2001:db8::10"]
    root_url: https://sales.example.com/app
  proxy:
    kind: nginx
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
    remote_addresses: ["192.0.2.0/24", "2001:db8:1::/64"]
    hsts:
      include_subdomains: true
      preload: true
    frame_ancestors: none
    content_security_policy: "default-src 'self'"
    headers:
      Permissions-Policy: "camera=(), microphone=()"
    max_upload_mb: 2048
    expose:
      docs: true
      debugger: true
    access:
      - prefix: /
        allow_from: ["192.0.2.0/24"]
        basic_auth: /etc/nginx/sales.htpasswd
        satisfy: any
      - prefix: /rest/
        allow_from: ["198.51.100.0/24", "2001:db8:5::/48"]
        client_certificate: /etc/ssl/certs/partner-ca.pem
        basic_auth: /etc/nginx/partner.htpasswd
  firewall:
    backend: nftables
  service:
    m2ee: /opt/m2ee/bin/m2ee
  waivers:
    - check: runtime-version
      reason: "Upgrade planned for the next release window; approved by the app owner"
      expires: 2999-12-31
"#;

fn password() -> AdminPassword {
    AdminPassword::new(TEST_PASSWORD.to_owned())
}

fn engine() -> Engine {
    Engine::load(None).expect("the built-in templates load")
}

/// Builds the context with every optional value present, as JSON.
fn maximal_context_json() -> Value {
    let app = load_app(MAXIMAL_APP);
    let mut context = RenderContext::new(&app, Some(EXAMPLE_RUNTIME_VERSION)).with_secret(&password());
    // Resolvers come from the host, not the desired state.
    context.set_ocsp_resolvers(vec!["192.0.2.53".to_owned()]);
    serde_json::to_value(&context).expect("the render context serializes")
}

/// Returns the output filters allowed at the end of an expression in `template`.
fn output_filters(template: &str) -> Vec<&'static str> {
    // Scripts and units beside other files are formats of their own.
    if template.ends_with(".ps1.tera") {
        return vec!["powershell", "num"];
    }
    let formats = match template.split('/').next() {
        Some("nginx") => vec!["nginx", "nginx_str"],
        Some("nftables") => vec!["nft"],
        Some("systemd") => vec!["systemd"],
        Some("m2ee") => vec!["yaml"],
        Some("iis") => vec!["xml"],
        Some("firewall") if template.ends_with(".service.tera") => vec!["systemd"],
        Some("firewall") if template.starts_with("firewall/iptables.v") => vec!["iptables"],
        _ => panic!("template {template} has no known output format; add its folder to output_filters"),
    };
    formats.into_iter().chain(["num"]).collect()
}

/// One `{{ }}` or `{% %}` tag of a template.
#[derive(Debug)]
struct Tag {
    /// `{{` or `{%`.
    opening: &'static str,
    /// The text between the delimiters, without whitespace-control dashes.
    body: String,
    /// Line of the opening delimiter, from 1.
    line: usize,
}

/// Splits `text` into its expression and statement tags. Comments are
/// skipped, except `{# loop: x in list #}`: a template that its parent
/// includes inside a loop declares the loop variable so, and the comment
/// counts as a `for` tag.
fn tags(name: &str, text: &str) -> Vec<Tag> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let (opening, closing) = if after.starts_with("{{") {
            ("{{", "}}")
        } else if after.starts_with("{%") {
            ("{%", "%}")
        } else if after.starts_with("{#") {
            ("{#", "#}")
        } else {
            offset += start + 1;
            rest = &rest[start + 1..];
            continue;
        };
        let line = text[..offset + start].matches('\n').count() + 1;
        let end = after
            .find(closing)
            .unwrap_or_else(|| panic!("{name}:{line}: {opening} is never closed"));
        let body = after[2..end].trim().trim_start_matches('-').trim_end_matches('-').trim();
        if opening != "{#" {
            found.push(Tag {
                opening,
                body: body.to_owned(),
                line,
            });
        } else if let Some(declared) = body.strip_prefix("loop:") {
            found.push(Tag {
                opening: "{%",
                body: format!("for {}", declared.trim()),
                line,
            });
        }
        offset += start + end + 2;
        rest = &rest[start + end + 2..];
    }
    found
}

/// Splits an expression at `|` characters outside string literals and brackets.
fn split_filters(expression: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote = None;
    let mut depth = 0_i32;
    for c in expression.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, '|') if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("parts is never empty").push(c);
    }
    parts.into_iter().map(|part| part.trim().to_owned()).collect()
}

/// Words of Tera's expression syntax that are not variables.
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "is", "true", "false", "none", "True", "False", "None"];

/// Returns the dotted variable paths in a filter-free expression, skipping
/// string literals, numbers, keywords, the test after `is` and function names.
fn variable_paths(expression: &str) -> Vec<String> {
    let chars: Vec<char> = expression.chars().collect();
    let mut paths = Vec::new();
    let mut previous_words = (String::new(), String::new());
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '"' || c == '\'' || c == '`' {
            let close = chars[index + 1..]
                .iter()
                .position(|&d| d == c)
                .unwrap_or_else(|| panic!("unclosed string in {expression:?}"));
            index += close + 2;
            continue;
        }
        if c.is_ascii_digit() {
            while index < chars.len() && (chars[index].is_ascii_alphanumeric() || chars[index] == '.') {
                index += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            index += 1;
            continue;
        }
        let start = index;
        while index < chars.len() && (chars[index].is_ascii_alphanumeric() || chars[index] == '_' || chars[index] == '.') {
            index += 1;
        }
        let word: String = chars[start..index].iter().collect();
        let is_function = chars.get(index) == Some(&'(');
        // The word after `is` or `is not` names a test, as in `x is not defined`.
        let is_test = previous_words.1 == "is" || (previous_words.0 == "is" && previous_words.1 == "not");
        if !KEYWORDS.contains(&word.as_str()) && !is_function && !is_test {
            paths.push(word.trim_end_matches('.').to_owned());
        }
        previous_words = (previous_words.1, word);
    }
    paths
}

/// Variable paths that one template names, and its loop variables with the
/// path each one iterates over.
#[derive(Debug, Default)]
struct TemplateVariables {
    paths: BTreeMap<String, usize>,
    loops: BTreeMap<String, String>,
}

fn template_variables(name: &str, text: &str) -> TemplateVariables {
    let mut found = TemplateVariables::default();
    for tag in tags(name, text) {
        let expression = match tag.opening {
            "{{" => split_filters(&tag.body).remove(0),
            _ => {
                let (keyword, rest) = tag.body.split_once(char::is_whitespace).unwrap_or((tag.body.as_str(), ""));
                match keyword {
                    "if" | "elif" => split_filters(rest).remove(0),
                    "for" => {
                        let (targets, iterable) = rest
                            .split_once(" in ")
                            .unwrap_or_else(|| panic!("{name}:{}: a for tag without `in`", tag.line));
                        let iterable = split_filters(iterable).remove(0);
                        for target in targets.split(',') {
                            found.loops.insert(target.trim().to_owned(), iterable.clone());
                        }
                        iterable
                    }
                    // An include names another template, which this check visits on its own.
                    "else" | "endif" | "endfor" | "raw" | "endraw" | "include" => continue,
                    other => panic!("{name}:{}: the variable check does not handle the tag {other:?}; extend template_variables", tag.line),
                }
            }
        };
        for path in variable_paths(&expression) {
            found.paths.entry(path).or_insert(tag.line);
        }
    }
    found
}

/// Looks up a dotted path such as `app.name` in a JSON object.
fn resolve<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |value, key| value.get(key))
}

/// Lists every `{{ }}` expression of template `name` that does not end in
/// one of the output filters of its format.
fn unfiltered_expressions(name: &str, text: &str) -> Vec<String> {
    let allowed = output_filters(name);
    let mut problems = Vec::new();
    for tag in tags(name, text).into_iter().filter(|tag| tag.opening == "{{") {
        let parts = split_filters(&tag.body);
        let filter = match parts.last() {
            Some(last) if parts.len() >= 2 => last.split('(').next().unwrap_or_default().trim().to_owned(),
            _ => String::new(),
        };
        if !allowed.contains(&filter.as_str()) {
            problems.push(format!(
                "{name}:{}: {{{{ {} }}}} ends with filter {filter:?}; expected one of {allowed:?}",
                tag.line, tag.body
            ));
        }
    }
    problems
}

#[test]
fn expressions_end_in_output_filter() {
    for (name, text) in BUILT_IN_TEMPLATES {
        let expressions = tags(name, text).into_iter().filter(|tag| tag.opening == "{{").count();
        assert!(expressions > 0 || !text.contains("{{"), "{name}: found no {{{{ }}}} expression; the tag scanner is broken");
        assert_eq!(unfiltered_expressions(name, text), Vec::<String>::new());
    }
}

#[test]
fn lint_flags_missing_or_foreign_filter() {
    let text = "a {{ app.name }}\nb {{ app.name | yaml }}\nc {{- runtime.port | num -}}\nd {{ app.base | nginx | upper }}\n";
    let problems = unfiltered_expressions("nginx/test.tera", text);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("nginx/test.tera:1:"), "{}", problems[0]);
    assert!(problems[1].starts_with("nginx/test.tera:2:"), "{}", problems[1]);
    assert!(problems[2].starts_with("nginx/test.tera:4:"), "{}", problems[2]);
}

#[test]
fn output_filter_list_matches_formats() {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (name, _) in BUILT_IN_TEMPLATES {
        used.extend(output_filters(name));
    }
    let declared: BTreeSet<&str> = mxharden_render::filters::OUTPUT_FILTERS.iter().copied().collect();
    assert_eq!(used, declared);
}

/// Lists every variable path of template `name` that `context` lacks, and
/// every loop whose list is missing or empty there. Paths below a loop
/// variable are not checked.
fn missing_paths(name: &str, text: &str, context: &Value) -> Vec<String> {
    let variables = template_variables(name, text);
    let mut problems = Vec::new();
    for (loop_variable, iterable) in &variables.loops {
        let below_loop_variable = variables.loops.contains_key(iterable.split('.').next().unwrap_or_default());
        if below_loop_variable {
            continue;
        }
        match resolve(context, iterable).and_then(Value::as_array) {
            None => problems.push(format!("{name}: `for {loop_variable} in {iterable}`: {iterable} is not a list in the context")),
            Some(items) if items.is_empty() => {
                problems.push(format!("{name}: {iterable} is empty in the context, so its loop body is never rendered"))
            }
            Some(_) => {}
        }
    }
    for (path, line) in &variables.paths {
        let top = path.split('.').next().unwrap_or_default();
        if !variables.loops.contains_key(top) && resolve(context, path).is_none() {
            problems.push(format!("{name}:{line}: {path} is not in the render context"));
        }
    }
    problems
}

#[test]
fn template_paths_exist_in_context() {
    let context = maximal_context_json();
    for (name, text) in BUILT_IN_TEMPLATES {
        assert!(!template_variables(name, text).paths.is_empty() || !text.contains("{{"), "{name}: found no variable; the tag scanner is broken");
        assert_eq!(missing_paths(name, text, &context), Vec::<String>::new());
    }
}

#[test]
fn path_check_flags_unknown_names() {
    let context = maximal_context_json();
    let text = "{{ app.name | yaml }}\n{% if runtime.versoin is defined %}x{% endif %}\n{%- for s in firewall.sources %}{{ s.x | nft }}{% endfor %}\n{{ secret.admin_pass | yaml }}\n";
    let problems = missing_paths("m2ee/test.tera", text, &context);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("firewall.sources is not a list")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("m2ee/test.tera:2: runtime.versoin")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("m2ee/test.tera:3: firewall.sources")), "{problems:#?}");
}

/// Tells whether a template renders only inside a loop of the template that
/// includes it, as its `{# loop: ... #}` comment declares. Such a template
/// cannot render alone; its parent renders it, and the path check reads
/// its loop declaration.
fn is_loop_partial(text: &str) -> bool {
    text.contains("{#- loop:") || text.contains("{# loop:")
}

#[test]
fn engine_variables_exist_in_context() {
    let context = maximal_context_json();
    let engine = engine();
    // Tera also lists the loop variables that included templates use.
    let loop_variables: BTreeSet<String> = BUILT_IN_TEMPLATES.iter().flat_map(|(name, text)| template_variables(name, text).loops.into_keys()).collect();
    for (name, text) in BUILT_IN_TEMPLATES.iter().filter(|(_, text)| !is_loop_partial(text)) {
        let names = engine.variables(name);
        assert!(!names.is_empty() || !text.contains("{{"), "Engine::variables({name}) returned no name");
        for top in names.into_iter().filter(|top| !loop_variables.contains(top)) {
            assert!(context.get(&top).is_some(), "{name}: top-level variable {top} is not in the render context");
        }
    }
}

#[test]
fn maximal_context_renders_every_template() {
    let app = load_app(MAXIMAL_APP);
    let context = RenderContext::new(&app, Some(EXAMPLE_RUNTIME_VERSION)).with_secret(&password());
    let engine = engine();
    for (name, _) in BUILT_IN_TEMPLATES.iter().filter(|(_, text)| !is_loop_partial(text)) {
        let rendered = engine.render(name, &context);
        assert!(rendered.is_ok(), "{name}: {}", rendered.err().map(|e| e.to_string()).unwrap_or_default());
    }
}

#[test]
fn minimal_context_renders_every_template() {
    // No runtime version: a template must test `runtime.version is defined`.
    let context = RenderContext::new(&example_app(), None).with_secret(&password());
    let engine = engine();
    for (name, _) in BUILT_IN_TEMPLATES.iter().filter(|(_, text)| !is_loop_partial(text)) {
        let rendered = engine.render(name, &context);
        assert!(rendered.is_ok(), "{name}: {}", rendered.err().map(|e| e.to_string()).unwrap_or_default());
    }
}

#[test]
fn remote_proxy_needs_concrete_listen() {
    let text = MAXIMAL_APP
        .replace("kind: nginx", "kind: iis")
        .replace(r#"listen: ["127.0.0.1", "::1", "192.0.2.10", "2001:db8::10"]"#, r#"listen: ["0.0.0.0"]"#);
    let errors = try_load_app(&text).expect_err("0.0.0.0 with a remote proxy must be rejected");
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"app.runtime.listen"), "{errors}");
}

/// Renders every file for `examples/app.yaml` with the example's runtime version.
fn example_artifacts() -> (AppSpec, RenderContext, Vec<Artifact>) {
    let app = example_app();
    let context = RenderContext::new(&app, Some(EXAMPLE_RUNTIME_VERSION));
    let artifacts = render_app(&engine(), &app, &context, &password()).expect("the example renders");
    (app, context, artifacts)
}

fn artifact(artifacts: &[Artifact], kind: ArtifactKind) -> &Artifact {
    artifacts
        .iter()
        .find(|artifact| artifact.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} among {artifacts:?}"))
}

#[test]
fn snapshot_example_layout() {
    let (_, _, artifacts) = example_artifacts();
    let layout: Vec<String> = artifacts
        .iter()
        .map(|a| format!("{} {:?} {:?} {:04o} secret={}", a.path, a.kind, a.owner, a.mode, a.secret))
        .collect();
    insta::assert_snapshot!("example_layout", layout.join("\n"));
}

#[test]
fn snapshot_example_nginx_site() {
    let (_, _, artifacts) = example_artifacts();
    insta::assert_snapshot!("example_nginx_site", artifact(&artifacts, ArtifactKind::NginxSite).contents);
}

#[test]
fn snapshot_example_nft_rules() {
    let (_, _, artifacts) = example_artifacts();
    insta::assert_snapshot!("example_nft_rules", artifact(&artifacts, ArtifactKind::NftRules).contents);
}

#[test]
fn snapshot_example_systemd_unit() {
    let (_, _, artifacts) = example_artifacts();
    insta::assert_snapshot!("example_systemd_unit", artifact(&artifacts, ArtifactKind::SystemdUnit).contents);
}

#[test]
fn snapshot_example_m2ee_include() {
    let (_, _, artifacts) = example_artifacts();
    insta::assert_snapshot!("example_m2ee_include", artifact(&artifacts, ArtifactKind::M2eeInclude).contents);
}

#[test]
fn snapshot_example_m2ee_main() {
    let (_, context, _) = example_artifacts();
    let main = render_m2ee_main(&engine(), &context).expect("m2ee.yaml renders");
    insta::assert_snapshot!("example_m2ee_main", main);
}

#[test]
fn snapshot_example_iis_web_config() {
    let (_, context, _) = example_artifacts();
    let web_config = engine().render("iis/web.config.tera", &context).expect("web.config renders");
    insta::assert_snapshot!("example_iis_web_config", web_config);
}

#[test]
fn password_only_in_m2ee_include() {
    let (_, _, artifacts) = example_artifacts();
    for artifact in &artifacts {
        let holds_password = artifact.contents.contains(TEST_PASSWORD);
        assert_eq!(holds_password, artifact.kind == ArtifactKind::M2eeInclude, "{}", artifact.path);
        assert_eq!(artifact.secret, holds_password, "{}: secret flag", artifact.path);
    }
}

/// Writes a self-signed certificate and key for the app's server name where
/// its TLS paths point beneath `prefix`.
fn write_test_certificate(prefix: &Path, app: &AppSpec) {
    let certificate = prefix.join(app.tls_certificate.relative());
    let key = prefix.join(app.tls_key.relative());
    for file in [&certificate, &key] {
        std::fs::create_dir_all(file.parent().expect("a TLS path has a folder")).expect("create the TLS folder");
    }
    write_self_signed_certificate(&certificate, &key, &app.server_name.to_string()).expect("make the test certificate");
}

fn assert_nginx_accepts(app: &AppSpec, context: &RenderContext) {
    let folder = tempfile::tempdir().expect("create a temporary folder");
    write_test_certificate(folder.path(), app);
    if let Some(ca) = &context.access.client_ca {
        // nginx -t loads the client CA file, so the self-signed server
        // certificate is copied there.
        let target = folder.path().join(&ca[1..]);
        std::fs::create_dir_all(target.parent().expect("a CA path has a folder")).expect("create the CA folder");
        std::fs::copy(folder.path().join(app.tls_certificate.relative()), &target).expect("copy the client CA");
    }
    let prefix = folder.path().display().to_string();
    let shared = engine().render("nginx/http.conf.tera", context).expect("the shared http file renders");
    let site = engine().render("nginx/site.conf.tera", &context.beneath(&prefix)).expect("the site renders");
    match check_nginx_site(&[shared.as_str(), site.as_str()], true) {
        Ok(outcome) => assert_eq!(outcome, CheckOutcome::Passed("nginx -t".into())),
        Err(error) => panic!("nginx -t rejected the site:\n{error}\n{site}"),
    }
}

fn assert_nft_accepts(rules: &str) {
    match check_nft_rules(rules, false) {
        Ok(outcome) => assert_eq!(outcome, CheckOutcome::Passed("nft -c".into()), "expected nft -c to run as root"),
        Err(error) => panic!("nft -c rejected the rules:\n{error}\n{rules}"),
    }
}

#[test]
fn example_site_passes_nginx() {
    let (app, context, _) = example_artifacts();
    assert_nginx_accepts(&app, &context);
}

#[test]
fn maximal_site_passes_nginx() {
    let app = load_app(MAXIMAL_APP);
    let context = RenderContext::new(&app, Some(EXAMPLE_RUNTIME_VERSION));
    assert_nginx_accepts(&app, &context);
}

#[test]
fn example_rules_pass_nft() {
    let (_, _, artifacts) = example_artifacts();
    assert_nft_accepts(&artifact(&artifacts, ArtifactKind::NftRules).contents);
}

#[test]
fn maximal_rules_pass_nft() {
    let app = load_app(MAXIMAL_APP);
    let context = RenderContext::new(&app, Some(EXAMPLE_RUNTIME_VERSION));
    let artifacts = render_app(&engine(), &app, &context, &password()).expect("the maximal app renders");
    let rules = &artifact(&artifacts, ArtifactKind::NftRules).contents;
    assert!(rules.contains("ip saddr 192.0.2.0/24 tcp dport 8000 accept"), "{rules}");
    assert!(rules.contains("ip6 saddr 2001:db8:1::/64 tcp dport 8000 accept"), "{rules}");
    assert_nft_accepts(rules);
}

/// Returns the maximal desired state with kind iis, without the access checks that
/// IIS cannot express (client certificates, basic authentication and IPv6
/// allow-lists).
fn maximal_iis_app() -> String {
    MAXIMAL_APP
        .replace("kind: nginx", "kind: iis")
        .replace(r#", "2001:db8:5::/48""#, "")
        .lines()
        .filter(|line| !line.contains("basic_auth:") && !line.contains("client_certificate:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn web_config_sets_https_variables() {
    let app = load_app(&maximal_iis_app());
    let context = RenderContext::new(&app, None);
    let artifacts = render_app(&engine(), &app, &context, &password()).expect("the IIS app renders");
    let web_config = artifact(&artifacts, ArtifactKind::IisWebConfig);
    assert_eq!(web_config.path.as_str(), "/etc/mxharden/iis/sales-eu/web.config");

    let document = roxmltree::Document::parse(&web_config.contents)
        .unwrap_or_else(|error| panic!("web.config is not XML: {error}\n{}", web_config.contents));
    let allowed: BTreeSet<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("allowedServerVariables"))
        .flat_map(|node| node.children().filter(|child| child.has_tag_name("add")))
        .filter_map(|add| add.attribute("name"))
        .collect();
    let rewrite = document
        .descendants()
        .find(|node| node.has_tag_name("rule") && node.descendants().any(|child| child.has_tag_name("action") && child.attribute("type") == Some("Rewrite")))
        .expect("a rule with a Rewrite action");
    let set: BTreeMap<&str, &str> = rewrite
        .descendants()
        .filter(|node| node.has_tag_name("set"))
        .filter_map(|node| Some((node.attribute("name")?, node.attribute("value")?)))
        .collect();

    for variable in ["HTTP_X_FORWARDED_SCHEME", "HTTP_X_FORWARDED_PROTO"] {
        assert_eq!(set.get(variable), Some(&"https"), "{variable} in the rewrite rule");
        assert!(allowed.contains(variable), "{variable} is not in allowedServerVariables");
    }
    let action = rewrite
        .descendants()
        .find(|node| node.has_tag_name("action"))
        .and_then(|node| node.attribute("url"));
    assert_eq!(action, Some("http://192.0.2.10:8000/{R:1}"));
}

#[test]
fn web_config_fences_paths_with_ip_security() {
    let app = load_app(&maximal_iis_app());
    let context = RenderContext::new(&app, None);
    let artifacts = render_app(&engine(), &app, &context, &password()).expect("the IIS app renders");
    let web_config = artifact(&artifacts, ArtifactKind::IisWebConfig);
    let document = roxmltree::Document::parse(&web_config.contents)
        .unwrap_or_else(|error| panic!("web.config is not XML: {error}\n{}", web_config.contents));
    let entries = |security: roxmltree::Node| -> Vec<(String, String)> {
        let ip_security = security.children().find(|node| node.has_tag_name("ipSecurity")).expect("an ipSecurity element");
        assert_eq!(ip_security.attribute("allowUnlisted"), Some("false"));
        ip_security
            .children()
            .filter(|node| node.has_tag_name("add"))
            .map(|add| {
                assert_eq!(add.attribute("allowed"), Some("true"));
                (add.attribute("ipAddress").unwrap().to_owned(), add.attribute("subnetMask").unwrap().to_owned())
            })
            .collect()
    };

    // The rule for / sits in the site's own security section.
    let root = document.root_element();
    let site_security = root
        .children()
        .find(|node| node.has_tag_name("system.webServer"))
        .and_then(|web_server| web_server.children().find(|node| node.has_tag_name("security")))
        .expect("the site's security section");
    assert_eq!(entries(site_security), [("192.0.2.0".to_owned(), "255.255.255.0".to_owned())]);

    // The rule for /rest/ is a location of its own that drops the site's entries.
    let location = root.children().find(|node| node.has_tag_name("location")).expect("a location for /rest/");
    assert_eq!(location.attribute("path"), Some("rest"));
    let security = location.descendants().find(|node| node.has_tag_name("security")).unwrap();
    let ip_security = security.children().find(|node| node.has_tag_name("ipSecurity")).unwrap();
    assert!(ip_security.children().any(|node| node.has_tag_name("clear")), "the location keeps the site's entries");
    assert_eq!(entries(security), [("198.51.100.0".to_owned(), "255.255.255.0".to_owned())]);

    let script = artifact(&artifacts, ArtifactKind::IisScript);
    assert!(script.contents.contains("unlock config -section:system.webServer/security/ipSecurity"), "{}", script.contents);
}
