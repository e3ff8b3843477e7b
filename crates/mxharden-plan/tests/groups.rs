//! The key exchange groups in the shared nginx file follow the OpenSSL that
//! nginx runs with.


use mxharden_plan::checks::{check_nginx_site, nginx_ecdh_groups};
use mxharden_render::context::{CLASSIC_GROUPS, HYBRID_GROUPS};
use mxharden_render::{Engine, RenderContext};
use mxharden_testkit::spec::example_app;

fn http_file(groups: &str) -> String {
    let app = example_app();
    let mut context = RenderContext::new(&app, None);
    context.set_ecdh_curve(groups);
    Engine::load(None).unwrap().render("nginx/http.conf.tera", &context).unwrap()
}

#[test]
fn detected_groups_pass_nginx() {
    let groups = nginx_ecdh_groups();
    check_nginx_site(&[&http_file(groups)], true).expect("nginx -t accepts the detected groups");
}

#[test]
fn hybrid_group_needs_new_openssl() {
    // On an OpenSSL older than 3.5 the detection must have fallen back,
    // because nginx -t rejects the hybrid group there.
    if nginx_ecdh_groups() == CLASSIC_GROUPS {
        let error = check_nginx_site(&[&http_file(HYBRID_GROUPS)], true).expect_err("nginx -t rejects X25519MLKEM768");
        assert!(error.to_string().contains("ssl_ecdh_curve") || error.to_string().contains("X25519MLKEM768"), "{error}");
    } else {
        check_nginx_site(&[&http_file(HYBRID_GROUPS)], true).expect("nginx -t accepts the hybrid group");
    }
}
