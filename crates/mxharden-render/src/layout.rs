//! Host paths of each generated file and managed folder.

use mxharden_spec::AppSpec;
use mxharden_spec::values::AbsPath;

fn path(text: String) -> AbsPath {
    text.parse().expect("paths built from checked names and paths are valid")
}

/// Returns the nginx site file, included by Debian's `nginx.conf` from `conf.d`.
pub fn nginx_site(app: &AppSpec) -> AbsPath {
    path(format!("/etc/nginx/conf.d/mxharden-{}.conf", app.name))
}

/// Path of the http-level directives and catch-all servers that every nginx
/// app shares. The `00` sorts it before the sites in Debian's `conf.d` include.
pub const NGINX_HTTP_FILE: &str = "/etc/nginx/conf.d/mxharden-00-http.conf";

/// Returns the shared http-level nginx file as a path.
pub fn nginx_http() -> AbsPath {
    path(NGINX_HTTP_FILE.to_owned())
}

/// Returns the `web.config` for an IIS proxy, to copy to the Windows host.
pub fn iis_web_config(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/iis/{}/web.config", app.name))
}

/// Returns the PowerShell script with the `appcmd` steps for the IIS site.
pub fn iis_script(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/iis/{}/configure-iis.ps1", app.name))
}

/// Returns the nftables rules for the app's table.
pub fn nft_rules(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/nftables/{}.nft", app.name))
}

/// Returns the iptables rules for the app's chain, in `iptables-restore` format.
pub fn iptables_rules(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/iptables/{}.v4", app.name))
}

/// Returns the ip6tables rules for the app's chain, in `ip6tables-restore` format.
pub fn ip6tables_rules(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/iptables/{}.v6", app.name))
}

/// Returns the iptables and ip6tables chain that mxharden owns for the app. Chain
/// names have at most 28 characters; an app name has at most 24.
pub fn iptables_chain(app: &AppSpec) -> String {
    format!("MXH-{}", app.name.as_str().to_ascii_uppercase())
}

/// Returns the PowerShell script with the app's Windows Firewall rules, to run on the Windows host.
pub fn windows_firewall_script(app: &AppSpec) -> AbsPath {
    path(format!("/etc/mxharden/windows/{}/firewall.ps1", app.name))
}

/// Returns the unit that loads the app's firewall rules at boot.
pub fn firewall_unit_name(app: &AppSpec) -> String {
    format!("mxharden-firewall-{}.service", app.name)
}

/// Returns the unit file that loads the app's firewall rules at boot.
pub fn firewall_unit(app: &AppSpec) -> AbsPath {
    path(format!("/etc/systemd/system/{}", firewall_unit_name(app)))
}

/// Returns the link that enables [`firewall_unit`], as `systemctl enable` makes it.
pub fn firewall_unit_link(app: &AppSpec) -> AbsPath {
    path(format!("/etc/systemd/system/sysinit.target.wants/{}", firewall_unit_name(app)))
}

/// Returns the systemd unit name.
pub fn unit_name(app: &AppSpec) -> String {
    format!("mendix-{}.service", app.name)
}

/// Returns the systemd unit file.
pub fn systemd_unit(app: &AppSpec) -> AbsPath {
    path(format!("/etc/systemd/system/{}", unit_name(app)))
}

/// Returns the nftables table that mxharden owns for the app.
pub fn nft_table(app: &AppSpec) -> String {
    format!("mxharden_{}", app.name.as_str().replace('-', "_"))
}

/// Returns the app user's m2ee-tools folder, `<home>/.m2ee`.
pub fn m2ee_dir(app: &AppSpec) -> AbsPath {
    app.home.join(".m2ee")
}

/// Returns the m2ee-tools file that the operator owns, `<home>/.m2ee/m2ee.yaml`.
pub fn m2ee_main(app: &AppSpec) -> AbsPath {
    m2ee_dir(app).join("m2ee.yaml")
}

/// Returns the mxharden's m2ee-tools file, listed under `include` in `m2ee.yaml`.
pub fn m2ee_include(app: &AppSpec) -> AbsPath {
    m2ee_dir(app).join("mxharden.yaml")
}

/// m2ee-tools' default PID file.
pub fn m2ee_pid_file(app: &AppSpec) -> AbsPath {
    m2ee_dir(app).join("m2ee.pid")
}

/// Returns the mxharden's record of the app: account and password hash.
pub fn state_file(app: &AppSpec) -> AbsPath {
    path(format!("/var/lib/mxharden/apps/{}.json", app.name))
}

/// Path of the run lock.
pub const LOCK_FILE: &str = "/run/mxharden.lock";
