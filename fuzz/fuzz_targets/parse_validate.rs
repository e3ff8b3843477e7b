//! Feeds arbitrary bytes to the desired-state parser and validator. The
//! parser must return an error instead of panicking. Every app that
//! validation accepts must render, because the templates' output filters
//! reject any value that would need quoting. A render error therefore means
//! that validation let through a value that no generated file can contain.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mxharden_render::{AdminPassword, Engine, RenderContext};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    let Ok(state) = mxharden_spec::parse::parse_desired_state(file, text) else {
        return;
    };
    // A fixed date keeps a crashing input reproducible on a later day.
    let today = jiff::civil::date(2026, 6, 1);
    let Ok(app) = mxharden_spec::resolve::resolve_app(file, state, today) else {
        return;
    };
    let conflicts = mxharden_spec::cross::check_apps_distinct(&[app.clone(), app.clone()]);
    assert!(!conflicts.is_empty(), "an app checked against itself must conflict");

    let engine = Engine::load(None).expect("built-in templates load");
    let context = RenderContext::new(&app, Some("10.24.3.75271"));
    let password = AdminPassword::new("p".repeat(48));
    if let Err(error) = mxharden_render::render_app(&engine, &app, &context, &password) {
        panic!("validation accepted an app that does not render: {error}\n{text}");
    }
});
