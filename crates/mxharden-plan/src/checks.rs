//! Checking generated files with their own tools before anything is written.

use std::path::Path;
use std::process::Command;

use crate::error::PlanError;

/// The outcome of a tool check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum CheckOutcome {
    /// The tool accepted the file.
    Passed(String),
    /// The check could not run here; the string says why.
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
