//! Checks of the files that the proxy's access rules name, before nginx is
//! given them. The client CA file must contain a CA certificate, and the
//! htpasswd file must contain `user:hash` lines that nginx can check.

use x509_parser::pem::Pem;

use mxharden_spec::values::AbsPath;
use mxharden_spec::{AccessRule, AppSpec};

use crate::certs::read_linked_file;
use crate::error::PlanError;
use crate::host::Host;

/// Largest CA or htpasswd file read, in bytes.
const FILE_LIMIT: u64 = 1024 * 1024;

/// Checks every file that `app`'s access rules name and returns warnings
/// for the report.
pub fn check_access_files(host: &Host, app: &AppSpec) -> Result<Vec<String>, PlanError> {
    let mut warnings = Vec::new();
    for rule in &app.proxy.access {
        if let Some(ca) = &rule.client_certificate {
            check_client_ca(host, app, rule, ca)?;
        }
        if let Some(file) = &rule.basic_auth {
            warnings.extend(check_htpasswd(host, app, rule, file)?);
        }
    }
    Ok(warnings)
}

fn invalid(host: &Host, app: &AppSpec, rule: &AccessRule, suffix: &str, path: &AbsPath, message: impl Into<String>) -> PlanError {
    let position = match suffix {
        "client_certificate" => rule.client_certificate_position.as_ref(),
        _ => rule.basic_auth_position.as_ref(),
    };
    PlanError::InvalidAccessFile {
        position: position.map_or_else(|| app.source.display().to_string(), ToString::to_string),
        field: format!("{}.{suffix}", rule.field),
        path: host.host_path(path.as_str()),
        message: message.into(),
    }
}

fn check_client_ca(host: &Host, app: &AppSpec, rule: &AccessRule, path: &AbsPath) -> Result<(), PlanError> {
    let fail = |message: String| invalid(host, app, rule, "client_certificate", path, message);
    let bytes = read_linked_file(host, path, FILE_LIMIT)?.ok_or_else(|| fail("the file does not exist; give the PEM file of the CA that issues the client certificates".to_owned()))?;
    let blocks: Vec<Pem> = Pem::iter_from_buffer(&bytes).collect::<Result<_, _>>().map_err(|e| fail(format!("not a PEM file: {e}")))?;
    let certificates: Vec<&Pem> = blocks.iter().filter(|block| block.label == "CERTIFICATE").collect();
    if certificates.is_empty() {
        return Err(fail("no CERTIFICATE block found; expected the CA certificate in PEM".to_owned()));
    }
    let mut has_ca = false;
    for (index, block) in certificates.iter().enumerate() {
        let certificate = block.parse_x509().map_err(|e| fail(format!("certificate {} of the file cannot be parsed: {e}", index + 1)))?;
        has_ca |= certificate.is_ca();
    }
    if !has_ca {
        return Err(fail(
            "no certificate in the file is a CA (basicConstraints CA:TRUE), so nginx would reject every client certificate; give the certificate of the issuing CA".to_owned(),
        ));
    }
    Ok(())
}

/// Password schemes that nginx's auth_basic reads (its documentation lists
/// crypt(3), `{PLAIN}`, `{SHA}` and `{SSHA}`). `{PLAIN}` stores the password
/// itself, so it is rejected.
const PLAIN_SCHEME: &str = "{PLAIN}";

fn check_htpasswd(host: &Host, app: &AppSpec, rule: &AccessRule, path: &AbsPath) -> Result<Vec<String>, PlanError> {
    let fail = |message: String| invalid(host, app, rule, "basic_auth", path, message);
    let bytes = read_linked_file(host, path, FILE_LIMIT)?
        .ok_or_else(|| fail("the file does not exist; create it with htpasswd (apache2-utils) or openssl passwd -apr1, as mxharden never writes passwords".to_owned()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("the file is not UTF-8 text".to_owned()))?;
    let mut users = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let Some((user, hash)) = line.split_once(':') else {
            return Err(fail(format!("line {number} is not user:hash")));
        };
        if user.is_empty() || user.contains(char::is_whitespace) {
            return Err(fail(format!("line {number}: the user name is empty or contains white space")));
        }
        // nginx reads the hash up to the next ':', so a third field (as
        // htdigest writes) is allowed.
        let hash = hash.split(':').next().unwrap_or_default();
        if hash.is_empty() || hash.contains(char::is_whitespace) {
            return Err(fail(format!("line {number}: the password hash of {user} is empty or contains white space")));
        }
        if hash.starts_with(PLAIN_SCHEME) {
            return Err(fail(format!("line {number}: the password of {user} is stored in plain text ({PLAIN_SCHEME}); store a hash, e.g. with htpasswd -B")));
        }
        users += 1;
    }
    if users == 0 {
        return Err(fail("the file lists no user; add user:hash lines".to_owned()));
    }

    let mut warnings = Vec::new();
    let file = crate::certs::resolve_links(host, path)?;
    if let Some(meta) = host.root.meta(&file)? {
        let host_file = host.host_path(path.as_str());
        if meta.mode & 0o004 != 0 {
            warnings.push(format!(
                "{}: every user may read the password hashes (mode {:04o}); run chmod 0640 and chgrp www-data (the group nginx's workers run as on Debian)",
                host_file.display(),
                meta.mode
            ));
        } else if meta.mode & 0o040 == 0 && meta.uid == 0 {
            warnings.push(format!(
                "{}: nginx's worker processes read this file on every request, but only root may read it (mode {:04o}), so {} would answer 500; run chgrp www-data and chmod 0640",
                host_file.display(),
                meta.mode,
                rule.prefix
            ));
        }
    }
    Ok(warnings)
}
