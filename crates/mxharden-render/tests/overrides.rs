//! Templates that replace built-in ones must follow the same output rules.

use mxharden_render::{BUILT_IN_TEMPLATES, Engine, engine::check_output_filters};

#[test]
fn built_in_templates_pass_filter_check() {
    for (name, text) in BUILT_IN_TEMPLATES {
        assert!(check_output_filters(name, text).is_ok(), "{name} fails the check that overrides must pass");
    }
}

#[test]
fn override_without_filter_rejected() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("nginx")).unwrap();
    let built_in = BUILT_IN_TEMPLATES.iter().find(|(name, _)| *name == "nginx/site.conf.tera").unwrap().1;
    let changed = built_in.replacen("{{ proxy.server_name | nginx }}", "{{ proxy.server_name }}", 1);
    assert_ne!(changed, built_in, "the site template no longer names proxy.server_name");
    std::fs::write(folder.path().join("nginx/site.conf.tera"), changed).unwrap();
    let error = Engine::load(Some(folder.path())).err().expect("an override without an output filter must be rejected");
    let message = error.to_string();
    assert!(message.contains("does not end in an output filter"), "{message}");
    assert!(message.contains("site.conf.tera"), "{message}");
}

#[test]
fn override_with_filter_accepted() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("m2ee")).unwrap();
    std::fs::write(folder.path().join("m2ee/m2ee.yaml.tera"), "# local header\ninclude:\n  - {{ app.m2ee_include | yaml }}\n").unwrap();
    assert!(Engine::load(Some(folder.path())).is_ok());
}
