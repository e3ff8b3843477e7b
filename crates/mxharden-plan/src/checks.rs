//! Checking generated files with their own tools before anything is written.

use std::path::Path;
use std::process::Command;

use crate::error::PlanError;
use crate::host::Host;
use mxharden_render::layout;

/// The outcome of a tool check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum CheckOutcome {
    /// The tool accepted the file.
    Passed(String),
    /// The check could not run here; the string gives the reason.
    Skipped(String),
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn run(tool: &str, what: &str, command: &mut Command) -> Result<(), PlanError> {
    let output = command.output().map_err(|e| PlanError::MissingTool {
        program: tool.to_owned(),
        hint: format!("running it failed: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(PlanError::CheckFailed {
        tool: tool.to_owned(),
        what: what.to_owned(),
        output: text.trim().to_owned(),
    })
}

/// Runs `nginx -t` on `files`, included in this order into the `http` block
/// of a minimal main configuration in a private temporary folder.
/// `required` makes a missing nginx an error.
pub fn check_nginx_site(files: &[&str], required: bool) -> Result<CheckOutcome, PlanError> {
    let Some(nginx) = find_program("nginx") else {
        if required {
            return Err(PlanError::MissingTool {
                program: "nginx".into(),
                hint: "install it (Debian: apt-get install nginx) or set proxy.kind to iis".into(),
            });
        }
        return Ok(CheckOutcome::Skipped("nginx is not installed".into()));
    };
    if !is_root() {
        // nginx -t binds the listen ports and reads the private key, which
        // only root may do.
        return Ok(CheckOutcome::Skipped("nginx -t needs root".into()));
    }
    let folder = tempfile::Builder::new().prefix("mxharden-nginx-check").tempdir().map_err(|source| PlanError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = folder.path();

    let mut includes = String::new();
    for (index, contents) in files.iter().enumerate() {
        let path = dir.join(format!("{index:02}.conf"));
        write_private(&path, contents)?;
        includes.push_str(&format!("    include {};\n", path.display()));
    }
    let main = format!(
        "pid {dir}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n    access_log off;\n    client_body_temp_path {dir}/client;\n    proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n{includes}}}\n",
        dir = dir.display(),
    );
    let main_path = dir.join("nginx.conf");
    write_private(&main_path, &main)?;
    let mut command = Command::new(nginx);
    command.arg("-t").arg("-q").arg("-p").arg(dir).arg("-c").arg(&main_path).arg("-e").arg("stderr");
    run("nginx -t", "nginx site", &mut command)?;
    Ok(CheckOutcome::Passed("nginx -t".into()))
}

/// Returns the `ssl_ecdh_curve` list for the OpenSSL that nginx runs with.
/// nginx -t fails on a group that OpenSSL lacks, and the hybrid
/// X25519MLKEM768 group exists from OpenSSL 3.5 on, so the version that
/// `nginx -V` reports decides. Without nginx the classic list is used.
pub fn nginx_ecdh_groups() -> &'static str {
    let Some(nginx) = find_program("nginx") else {
        return mxharden_render::context::CLASSIC_GROUPS;
    };
    let Ok(output) = Command::new(nginx).arg("-V").output() else {
        return mxharden_render::context::CLASSIC_GROUPS;
    };
    // nginx -V prints to stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    match openssl_version(&text) {
        Some((major, minor)) if (major, minor) >= (3, 5) => mxharden_render::context::HYBRID_GROUPS,
        _ => mxharden_render::context::CLASSIC_GROUPS,
    }
}

/// Reads the OpenSSL version from `nginx -V` output: the "running with"
/// version when nginx reports one, else the "built with" version.
fn openssl_version(text: &str) -> Option<(u32, u32)> {
    let after = |marker: &str| text.split_once(marker).map(|(_, rest)| rest.to_owned());
    let rest = after("running with OpenSSL ").or_else(|| after("built with OpenSSL "))?;
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit()).filter(|part| !part.is_empty());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

/// Runs `nft -c -f` on `rules`. On a `--root` tree the check runs in a new,
/// empty network namespace, so it never reads the host's rules.
pub fn check_nft_rules(rules: &str, live: bool) -> Result<CheckOutcome, PlanError> {
    let Some(nft) = find_program("nft") else {
        if live {
            return Err(PlanError::MissingTool {
                program: "nft".into(),
                hint: "install it (Debian: apt-get install nftables) or set firewall.backend to none".into(),
            });
        }
        return Ok(CheckOutcome::Skipped("nft is not installed".into()));
    };
    if !is_root() {
        return Ok(CheckOutcome::Skipped("nft -c needs root".into()));
    }
    let folder = tempfile::Builder::new().prefix("mxharden-nft-check").tempdir().map_err(|source| PlanError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let rules_path = folder.path().join("rules.nft");
    write_private(&rules_path, rules)?;
    let mut command = if live {
        Command::new(&nft)
    } else {
        let Some(unshare) = find_program("unshare") else {
            return Ok(CheckOutcome::Skipped("unshare is not installed".into()));
        };
        let mut command = Command::new(unshare);
        command.arg("--net").arg("--").arg(&nft);
        command
    };
    command.arg("-c").arg("-f").arg(&rules_path);
    run("nft -c", "nftables rules", &mut command)?;
    Ok(CheckOutcome::Passed("nft -c".into()))
}

/// Fails when a site that mxharden does not manage claims `default_server`,
/// which collides with the catch-all servers of the shared http file. The
/// stock Debian site `sites-enabled/default` does.
pub fn check_foreign_default_servers(host: &Host) -> Result<(), PlanError> {
    // Debian's nginx.conf includes `conf.d/*.conf` and `sites-enabled/*`;
    // like glob(3), `*` matches no name that starts with a dot, so a
    // leftover temporary file is never loaded and is not looked at here.
    for (folder, suffix) in [("/etc/nginx/sites-enabled", ""), ("/etc/nginx/conf.d", ".conf")] {
        let Ok(entries) = std::fs::read_dir(host.host_path(folder)) else {
            continue;
        };
        let mut names: Vec<String> = entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for name in names {
            let included = !name.starts_with('.') && name.ends_with(suffix);
            if !included || name.starts_with("mxharden-") || name.contains('/') {
                continue;
            }
            let path = format!("{folder}/{name}");
            // Sites are usually links into sites-available; read them as nginx does.
            // NOTE: on a --root tree an absolute link resolves on the real host.
            let Ok(text) = std::fs::read_to_string(host.host_path(&path)) else {
                continue;
            };
            let claims_default = text
                .lines()
                .map(|line| line.split('#').next().unwrap_or_default())
                .any(|line| line.trim_start().starts_with("listen") && line.contains("default_server"));
            if claims_default {
                return Err(PlanError::Conflict(format!(
                    "{} declares a default_server, which conflicts with the catch-all servers in {}; remove that site (Debian: rm /etc/nginx/sites-enabled/default) or its default_server flag",
                    host.host_path(&path).display(),
                    layout::NGINX_HTTP_FILE
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_server_scan_skips_files_nginx_ignores() {
        let root = tempfile::tempdir().unwrap();
        let conf_d = root.path().join("etc/nginx/conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        let claim = "server {\n    listen 80 default_server;\n}\n";
        std::fs::write(conf_d.join(".mxharden-00-http.conf.mxharden-0123456789abcdef"), claim).unwrap();
        std::fs::write(conf_d.join("notes.txt"), claim).unwrap();
        let host = Host::sandbox(root.path()).unwrap();
        assert!(check_foreign_default_servers(&host).is_ok());
        std::fs::write(conf_d.join("other.conf"), claim).unwrap();
        assert!(check_foreign_default_servers(&host).is_err());
    }

    #[test]
    fn openssl_version_prefers_running() {
        let debian = "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.22 25 Aug 2026 (running with OpenSSL 3.0.19 27 Jan 2026)\n";
        assert_eq!(openssl_version(debian), Some((3, 0)));
        assert_eq!(openssl_version("built with OpenSSL 3.5.1 1 Jul 2025\n"), Some((3, 5)));
        assert_eq!(openssl_version("built with LibreSSL 3.8.2\n"), None);
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), PlanError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(contents.as_bytes()).map_err(|source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    })
}
