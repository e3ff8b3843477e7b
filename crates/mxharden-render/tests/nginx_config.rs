//! The rendered nginx files, checked by nginx itself and by gixy-ng for
//! every example and option combination, and kept as reviewed snapshots.

mod support;

use mxharden_render::RenderContext;
use mxharden_spec::{AccessRule, AppSpec, FrameAncestors, Satisfy, TlsProfile};
use support::{access_rule, example, gixy_findings, render, sandbox};

/// Files that the access rules of the variants name.
const PARTNER_CA: &str = "/etc/ssl/certs/partner-ca.pem";
const PARTNER_HTPASSWD: &str = "/etc/nginx/partner.htpasswd";

/// One option combination: a name, the app and its render context.
fn variants() -> Vec<(&'static str, AppSpec, RenderContext)> {
    let sales = example("app.yaml");
    let crm = example("app-modern.yaml");

    let mut opened = sales.clone();
    opened.proxy.expose_docs = true;
    opened.proxy.expose_debugger = true;
    opened.proxy.frame_ancestors = FrameAncestors::None;
    opened.proxy.hsts_include_subdomains = true;
    opened.proxy.headers = vec![("Permissions-Policy".parse().unwrap(), "camera=()".parse().unwrap())];
    let mut opened_context = RenderContext::new(&opened, Some("10.24.0.12345"));
    opened_context.set_ocsp_resolvers(vec!["127.0.0.53".to_owned(), "[::1]".to_owned()]);

    let mut modern_sales = sales.clone();
    modern_sales.proxy.tls_profile = TlsProfile::Modern;

    let with_access = |rules: Vec<AccessRule>| {
        let mut app = sales.clone();
        app.proxy.access = rules;
        let context = RenderContext::new(&app, None);
        (app, context)
    };
    let every_check = |satisfy| access_rule("/rest/", &["198.51.100.0/24", "2001:db8:5::/48"], Some(PARTNER_CA), Some(PARTNER_HTPASSWD), satisfy);
    let (access_ip, access_ip_context) = with_access(vec![access_rule("/rest/", &["198.51.100.0/24"], None, None, Satisfy::All)]);
    let (access_mtls, access_mtls_context) = with_access(vec![access_rule("/rest/", &[], Some(PARTNER_CA), None, Satisfy::All)]);
    let (access_basic, access_basic_context) = with_access(vec![access_rule("/rest/", &[], None, Some(PARTNER_HTPASSWD), Satisfy::All)]);
    let (access_all, access_all_context) = with_access(vec![every_check(Satisfy::All)]);
    let (access_any, access_any_context) = with_access(vec![every_check(Satisfy::Any)]);
    let (mut access_site, _) = with_access(vec![
        access_rule("/", &["10.0.0.0/8"], None, Some(PARTNER_HTPASSWD), Satisfy::Any),
        access_rule("/rest", &[], Some(PARTNER_CA), None, Satisfy::All),
        access_rule("/ws/", &["198.51.100.0/24"], None, None, Satisfy::All),
        access_rule("/file", &["198.51.100.0/24"], Some(PARTNER_CA), None, Satisfy::Any),
        access_rule("/rest-doc/", &["198.51.100.0/24"], None, None, Satisfy::All),
        access_rule("/debugger/", &["198.51.100.0/24"], None, None, Satisfy::All),
    ]);
    access_site.proxy.expose_docs = true;
    let access_site_context = RenderContext::new(&access_site, None);

    vec![
        ("sales", sales.clone(), RenderContext::new(&sales, None)),
        ("crm", crm.clone(), RenderContext::new(&crm, None)),
        ("sales-versioned", sales.clone(), RenderContext::new(&sales, Some("10.24.0.12345"))),
        ("sales-opened", opened, opened_context),
        ("sales-modern", modern_sales.clone(), RenderContext::new(&modern_sales, None)),
        ("access-ip", access_ip, access_ip_context),
        ("access-mtls", access_mtls, access_mtls_context),
        ("access-basic", access_basic, access_basic_context),
        ("access-all", access_all, access_all_context),
        ("access-any", access_any, access_any_context),
        ("access-site", access_site, access_site_context),
    ]
}

#[test]
fn nginx_accepts_every_variant() {
    for (name, app, context) in variants() {
        let sandbox = sandbox(&app, &context);
        let output = sandbox.nginx_test();
        assert!(output.status.success(), "{name}: nginx -t failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn gixy_finds_nothing_in_any_variant() {
    for (name, app, context) in variants() {
        let sandbox = sandbox(&app, &context);
        let findings = gixy_findings(&sandbox.plain_conf);
        assert!(findings.is_empty(), "{name}: gixy-ng reported:\n{}", serde_json::to_string_pretty(&findings).unwrap());
    }
}

#[test]
fn gixy_flags_debian_tls_defaults() {
    // The checker must see a weak setting when there is one: Debian's stock
    // http-level lines, which every mxharden server overrides.
    let (_, app, context) = variants().remove(0);
    let sandbox = sandbox(&app, &context);
    let findings = gixy_findings(&sandbox.main_conf);
    assert!(!findings.is_empty(), "gixy-ng found nothing in a config that enables TLS 1.0");
}

#[test]
fn snapshots_of_examples() {
    for (name, app, context) in variants().into_iter().filter(|(name, _, _)| ["sales", "crm"].contains(name)) {
        let rendered = render(&app, &context);
        insta::assert_snapshot!(format!("{name}-http.conf"), rendered.http);
        insta::assert_snapshot!(format!("{name}-site.conf"), rendered.site);
    }
    for (name, app, context) in variants().into_iter().filter(|(name, _, _)| ["access-any", "access-site"].contains(name)) {
        insta::assert_snapshot!(format!("{name}-site.conf"), render(&app, &context).site);
    }
}

fn variant(name: &str) -> (AppSpec, RenderContext) {
    let (_, app, context) = variants().into_iter().find(|(found, _, _)| *found == name).expect("the variant exists");
    (app, context)
}

#[test]
fn access_rule_covers_path_and_beneath() {
    let (app, context) = variant("access-ip");
    let site = render(&app, &context).site;
    let blocks = location_blocks(&site);
    for header in ["location = /rest {", "location ^~ /rest/ {", "location @mxharden_access_0 {"] {
        let (_, lines) = blocks.iter().find(|(location, _)| location == header).unwrap_or_else(|| panic!("{header} is missing:\n{site}"));
        assert!(lines.iter().any(|line| line == "allow 198.51.100.0/24;"), "{header}: {lines:?}");
        assert!(lines.iter().any(|line| line == "deny all;"), "{header}: {lines:?}");
    }
    assert!(!site.contains("ssl_verify_client"), "no rule checks client certificates");
}

#[test]
fn client_certificate_needs_server_level_ca() {
    let (app, context) = variant("access-mtls");
    let site = render(&app, &context).site;
    assert!(site.contains("    ssl_client_certificate /etc/ssl/certs/partner-ca.pem;\n    ssl_verify_client optional;\n"), "{site}");
    assert!(site.contains("location = /_mxharden/client-certificate {\n        internal;"), "{site}");
    let blocks = location_blocks(&site);
    let (_, rest) = blocks.iter().find(|(location, _)| location == "location ^~ /rest/ {").unwrap();
    assert!(rest.iter().any(|line| line == "auth_request /_mxharden/client-certificate;"), "{rest:?}");
}

#[test]
fn basic_auth_keeps_credentials_at_proxy() {
    let (app, context) = variant("access-basic");
    let site = render(&app, &context).site;
    let blocks = location_blocks(&site);
    let (_, named) = blocks.iter().find(|(location, _)| location == "location @mxharden_access_0 {").unwrap();
    assert!(named.iter().any(|line| line == "auth_basic_user_file /etc/nginx/partner.htpasswd;"), "{named:?}");
    assert!(named.iter().any(|line| line == "proxy_set_header Authorization \"\";"), "{named:?}");
    let (_, runtime) = blocks.iter().find(|(location, _)| location == "location @runtime {").unwrap();
    assert!(!runtime.iter().any(|line| line.starts_with("auth_basic")), "paths outside the rule ask for no password: {runtime:?}");
}

#[test]
fn satisfy_follows_rule() {
    for (name, expected) in [("access-all", "satisfy all;"), ("access-any", "satisfy any;")] {
        let (app, context) = variant(name);
        let site = render(&app, &context).site;
        let rule_blocks: Vec<_> = location_blocks(&site).into_iter().filter(|(location, _)| location.contains("/rest") || location.contains("mxharden_access")).collect();
        assert_eq!(rule_blocks.len(), 3, "{name}: {rule_blocks:?}");
        for (location, lines) in rule_blocks {
            assert!(lines.iter().any(|line| line == expected), "{name}: {location} lacks {expected}");
        }
    }
}

#[test]
fn site_rule_reaches_every_location() {
    let (app, context) = variant("access-site");
    let site = render(&app, &context).site;
    for (location, lines) in location_blocks(&site) {
        let denies = lines.iter().any(|line| line == "return 404;");
        let internal = lines.iter().any(|line| line == "internal;");
        if denies || internal {
            continue;
        }
        assert!(lines.iter().any(|line| line.starts_with("satisfy ")), "{location} applies no access rule");
    }
}

#[test]
fn rule_on_denied_path_changes_nothing() {
    let (app, context) = variant("access-site");
    let site = render(&app, &context).site;
    // The debugger stays denied to everyone; the opened documentation is fenced.
    assert!(site.contains("location ~ ^/debugger(/|$) {\n        return 404;"), "{site}");
    assert!(!site.contains("location ^~ /debugger/"), "{site}");
    assert!(site.contains("location ^~ /rest-doc/ {"), "{site}");
    // Rules on the WebSocket and upload paths keep those locations' settings.
    let blocks = location_blocks(&site);
    let (_, ws) = blocks.iter().find(|(location, _)| location == "location ^~ /ws/ {").unwrap();
    assert!(ws.iter().any(|line| line == "proxy_set_header Upgrade $http_upgrade;"), "{ws:?}");
    let (_, file) = blocks.iter().find(|(location, _)| location == "location ^~ /file/ {").unwrap();
    assert!(file.iter().any(|line| line == "proxy_request_buffering off;"), "{file:?}");
}

/// Splits `site` into its location blocks, each with its header line.
fn location_blocks(site: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in site.lines().map(str::trim) {
        if line.starts_with("location ") {
            current = Some((line.to_owned(), Vec::new()));
        } else if line == "}" {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line.to_owned());
        }
    }
    blocks
}

#[test]
fn locations_keep_server_headers() {
    for (name, app, context) in variants() {
        let site = render(&app, &context).site;
        for (location, lines) in location_blocks(&site) {
            let redefines = lines.iter().any(|line| line.starts_with("add_header") || line.starts_with("proxy_hide_header"));
            assert!(!redefines, "{name}: {location} sets its own headers and drops the server's");
        }
    }
}

#[test]
fn proxied_locations_set_forwarded_headers() {
    let expected = [
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-Scheme https;",
        "proxy_set_header X-Forwarded-Proto https;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Real-IP $remote_addr;",
    ];
    for (name, app, context) in variants() {
        let site = render(&app, &context).site;
        let proxied: Vec<_> = location_blocks(&site).into_iter().filter(|(_, lines)| lines.iter().any(|l| l.starts_with("proxy_pass"))).collect();
        assert!(proxied.len() >= 3, "{name}: expected the runtime, WebSocket and /file locations");
        for (location, lines) in proxied {
            for header in expected {
                assert!(lines.iter().any(|line| line == header), "{name}: {location} lacks {header}");
            }
        }
    }
}

#[test]
fn denied_paths_follow_expose() {
    let variants = variants();
    let sales = render(&variants[0].1, &variants[0].2).site;
    assert!(sales.contains("location ~ ^/[^/]+-doc(/|$) {\n        return 404;"));
    assert!(sales.contains("location ~ ^/debugger(/|$) {\n        return 404;"));
    let opened = render(&variants[3].1, &variants[3].2).site;
    assert!(!opened.contains("-doc(/|$)"));
    assert!(!opened.contains("^/debugger"));
}

#[test]
fn mxclientsystem_follows_runtime_version() {
    let variants = variants();
    let versioned = render(&variants[2].1, &variants[2].2).site;
    assert!(versioned.contains("alias /srv/mendix/sales/runtimes/10.24.0.12345/runtime/mxclientsystem/;"));
}

#[test]
fn ocsp_stapling_only_with_resolvers() {
    let variants = variants();
    let plain = render(&variants[0].1, &variants[0].2).site;
    assert!(!plain.contains("ssl_stapling"));
    let opened = render(&variants[3].1, &variants[3].2).site;
    assert!(opened.contains("ssl_stapling on;"));
    assert!(opened.contains("resolver 127.0.0.53 [::1];"));
}

#[test]
fn nginx_string_filter_rejects_variables() {
    let (_, app, mut context) = variants().remove(0);
    context.proxy.content_security_policy = "default-src $host".to_owned();
    let engine = mxharden_render::Engine::load(None).unwrap();
    let _ = app;
    let error = engine.render("nginx/site.conf.tera", &context).unwrap_err();
    assert!(error.to_string().contains("cannot be written into an nginx string"), "{error}");
}
