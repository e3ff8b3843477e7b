//! The IIS web.config and its PowerShell script: well-formed, in the
//! structure IIS reads, and kept as reviewed snapshots.

mod support;

use mxharden_render::{Engine, RenderContext};
use support::example;

fn render(template: &str) -> String {
    let app = example("app-iis.yaml");
    let context = RenderContext::new(&app, None);
    Engine::load(None).unwrap().render(template, &context).unwrap()
}

/// Child elements that IIS's configuration schema (IIS_schema.xml and the
/// URL Rewrite module's rewrite_schema.xml) allows under each element used.
const ALLOWED_CHILDREN: &[(&str, &[&str])] = &[
    ("configuration", &["system.webServer"]),
    ("system.webServer", &["rewrite", "security", "httpProtocol", "staticContent"]),
    ("rewrite", &["allowedServerVariables", "rules"]),
    ("allowedServerVariables", &["add"]),
    ("rules", &["rule"]),
    ("rule", &["match", "conditions", "serverVariables", "action"]),
    ("conditions", &["add"]),
    ("serverVariables", &["set"]),
    ("security", &["requestFiltering"]),
    ("requestFiltering", &["requestLimits"]),
    ("httpProtocol", &["customHeaders"]),
    ("customHeaders", &["add", "remove"]),
    ("staticContent", &["remove", "mimeMap"]),
];

fn attribute<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> &'a str {
    node.attribute(name).unwrap_or_else(|| panic!("<{}> lacks {name}", node.tag_name().name()))
}

#[test]
fn web_config_has_iis_structure() {
    let text = render("iis/web.config.tera");
    let document = roxmltree::Document::parse(&text).expect("web.config is well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "configuration");
    for node in document.descendants().filter(roxmltree::Node::is_element) {
        let Some(parent) = node.parent_element() else {
            continue;
        };
        let parent_name = parent.tag_name().name();
        let allowed = ALLOWED_CHILDREN
            .iter()
            .find(|(name, _)| *name == parent_name)
            .unwrap_or_else(|| panic!("<{parent_name}> may have no children"));
        assert!(allowed.1.contains(&node.tag_name().name()), "<{}> is not allowed in <{parent_name}>", node.tag_name().name());
    }
}

#[test]
fn web_config_sets_declared_server_variables() {
    let text = render("iis/web.config.tera");
    let document = roxmltree::Document::parse(&text).unwrap();
    let declared: Vec<&str> = document
        .descendants()
        .filter(|n| n.has_tag_name("add") && n.parent_element().is_some_and(|p| p.has_tag_name("allowedServerVariables")))
        .map(|n| attribute(n, "name"))
        .collect();
    let runtime = document
        .descendants()
        .find(|n| n.has_tag_name("rule") && n.attribute("name") == Some("mxharden runtime"))
        .expect("the runtime rule");
    let set: Vec<(&str, &str)> = runtime.descendants().filter(|n| n.has_tag_name("set")).map(|n| (attribute(n, "name"), attribute(n, "value"))).collect();
    assert_eq!(
        set,
        [
            ("HTTP_X_FORWARDED_SCHEME", "https"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_FOR", "{REMOTE_ADDR}"),
            ("HTTP_X_REAL_IP", "{REMOTE_ADDR}"),
        ]
    );
    for (name, _) in &set {
        assert!(declared.contains(name), "{name} is set but not declared in allowedServerVariables");
    }
    let action = runtime.descendants().find(|n| n.has_tag_name("action")).unwrap();
    assert_eq!(attribute(action, "url"), "http://10.20.0.5:8000/{R:1}");
}

#[test]
fn web_config_hides_server_and_sends_headers() {
    let text = render("iis/web.config.tera");
    let document = roxmltree::Document::parse(&text).unwrap();
    let filtering = document.descendants().find(|n| n.has_tag_name("requestFiltering")).unwrap();
    assert_eq!(attribute(filtering, "removeServerHeader"), "true");
    let headers: Vec<(&str, &str)> = document
        .descendants()
        .filter(|n| n.has_tag_name("add") && n.parent_element().is_some_and(|p| p.has_tag_name("customHeaders")))
        .map(|n| (attribute(n, "name"), attribute(n, "value")))
        .collect();
    let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy", "Permissions-Policy"]);
    assert_eq!(headers[3].1, mxharden_spec::DEFAULT_CONTENT_SECURITY_POLICY);
    let mime = document.descendants().find(|n| n.has_tag_name("mimeMap")).unwrap();
    assert_eq!((attribute(mime, "fileExtension"), attribute(mime, "mimeType")), (".mxf", "text/xml"));
    let rules: Vec<&str> = document.descendants().filter(|n| n.has_tag_name("rule")).map(|n| attribute(n, "name")).collect();
    assert!(rules.contains(&"mxharden deny API documentation"));
    assert!(rules.contains(&"mxharden deny debugger"));
}

#[test]
fn script_sets_proxy_and_hsts() {
    let script = render("iis/configure-iis.ps1.tera");
    assert!(script.contains("[string]$Site = 'sales.example.com'"));
    assert!(script.contains("-section:system.webServer/proxy /enabled:\"True\" /preserveHostHeader:\"True\""));
    assert!(script.contains("hsts.includeSubDomains:True"));
    assert!(script.contains("hsts.preload:False"));
}

#[test]
fn snapshots_of_iis_example() {
    insta::assert_snapshot!("sales-iis-web.config", render("iis/web.config.tera"));
    insta::assert_snapshot!("sales-iis-configure-iis.ps1", render("iis/configure-iis.ps1.tera"));
}
