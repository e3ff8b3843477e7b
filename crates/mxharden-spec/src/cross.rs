//! Checks across the apps given in one call: nothing may be shared.

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::{InputError, Position};
use crate::model::ProxyKind;
use crate::resolve::AppSpec;

/// Reports every name, account, folder, port and host name that two apps share.
pub fn check_apps_distinct(apps: &[AppSpec]) -> Vec<InputError> {
    let mut errors = Vec::new();
    let mut names = Seen::default();
    let mut users = Seen::default();
    let mut ports = Seen::default();
    let mut hosts = Seen::default();

    for app in apps {
        let p = &app.positions;
        names.add(app.name.as_str().to_owned(), &p.name, "app.name", "another app has the same name", &mut errors);
        users.add(app.user.as_str().to_owned(), &p.user, "app.user", "another app runs as the same account; every app needs its own", &mut errors);
        for (port, position, field) in [
            (app.runtime_port, &p.runtime_port, "app.runtime.port"),
            (app.admin_port, &p.admin_port, "app.runtime.admin_port"),
        ] {
            ports.add(port.get(), position, field, &format!("port {port} is already used by another app"), &mut errors);
        }
        hosts.add(app.server_name.as_str().to_owned(), &p.server_name, "app.proxy.server_name", "another app is served under the same host name", &mut errors);
    }
    check_bases_apart(apps, &mut errors);
    check_tls_profiles_agree(apps, &mut errors);
    check_files_outside_other_bases(apps, &mut errors);
    errors
}

/// nginx negotiates the TLS version in its default server, before it reads
/// the requested host name, so one host serves one protocol set: every
/// nginx app must name the same profile.
fn check_tls_profiles_agree(apps: &[AppSpec], errors: &mut Vec<InputError>) {
    let mut nginx_apps = apps.iter().filter(|app| app.proxy_kind == ProxyKind::Nginx);
    let Some(first) = nginx_apps.next() else {
        return;
    };
    for app in nginx_apps {
        if app.proxy.tls_profile != first.proxy.tls_profile {
            errors.push(
                InputError::new(
                    &app.positions.tls_profile,
                    "app.proxy.tls.profile",
                    format!(
                        "app {} uses a different TLS profile than app {}; nginx applies one protocol set to every site on a host, so give every app the same profile",
                        app.name, first.name
                    ),
                )
                .with_related(&first.positions.tls_profile),
            );
        }
    }
}

/// Reports a TLS file or m2ee program that lies in another app's base
/// folder, where mxharden hands files to that app's user.
fn check_files_outside_other_bases(apps: &[AppSpec], errors: &mut Vec<InputError>) {
    for app in apps {
        let p = &app.positions;
        let files = [
            (&app.tls_certificate, &p.tls_certificate, "app.proxy.tls.certificate"),
            (&app.tls_key, &p.tls_key, "app.proxy.tls.key"),
            (&app.m2ee, &p.m2ee, "app.service.m2ee"),
        ];
        for (path, position, field) in files {
            for other in apps.iter().filter(|other| other.name != app.name) {
                if path.is_within(&other.base) {
                    errors.push(
                        InputError::new(
                            position,
                            field,
                            format!("{path} lies in the base folder of app {}, whose user could replace it; keep it outside every app's folder", other.name),
                        )
                        .with_related(&other.positions.base),
                    );
                }
            }
        }
    }
}

fn check_bases_apart(apps: &[AppSpec], errors: &mut Vec<InputError>) {
    for (index, app) in apps.iter().enumerate() {
        for other in &apps[..index] {
            if app.base.is_within(&other.base) || other.base.is_within(&app.base) {
                errors.push(
                    InputError::new(
                        &app.positions.base,
                        "app.base",
                        format!("{} overlaps the base of app {}; each app needs a folder of its own", app.base, other.name),
                    )
                    .with_related(&other.positions.base),
                );
            }
        }
    }
}

/// Remembers where each value was first seen.
struct Seen<K> {
    first: HashMap<K, Position>,
}

impl<K> Default for Seen<K> {
    fn default() -> Self {
        Seen { first: HashMap::new() }
    }
}

impl<K: Eq + Hash> Seen<K> {
    fn add(&mut self, key: K, position: &Position, field: &str, message: &str, errors: &mut Vec<InputError>) {
        match self.first.get(&key) {
            Some(first) => errors.push(InputError::new(position, field, message).with_related(first)),
            None => {
                self.first.insert(key, position.clone());
            }
        }
    }
}
