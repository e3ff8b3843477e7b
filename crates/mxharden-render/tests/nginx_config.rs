//! The rendered nginx files, checked by nginx itself and by gixy-ng for
//! every example and option combination, and kept as reviewed snapshots.

mod support;

use mxharden_render::RenderContext;
use mxharden_spec::{AppSpec, FrameAncestors, TlsProfile};
use support::{example, gixy_findings, render, sandbox};

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

    vec![
        ("sales", sales.clone(), RenderContext::new(&sales, None)),
        ("crm", crm.clone(), RenderContext::new(&crm, None)),
        ("sales-versioned", sales.clone(), RenderContext::new(&sales, Some("10.24.0.12345"))),
        ("sales-opened", opened, opened_context),
        ("sales-modern", modern_sales.clone(), RenderContext::new(&modern_sales, None)),
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
