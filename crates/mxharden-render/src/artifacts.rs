//! The files mxharden generates for one app, with owner and mode.

use mxharden_spec::values::AbsPath;
use mxharden_spec::{AppSpec, FirewallBackend, ProxyKind};

use crate::context::{AdminPassword, RenderContext};
use crate::engine::{Engine, RenderError};
use crate::layout;

/// Owner of a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    /// root:root.
    Root,
    /// The app's account and group.
    AppUser,
}

/// What a generated file is for; decides how it is checked and activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// nginx site.
    NginxSite,
    /// The http-level nginx file that every app shares.
    NginxHttp,
    /// IIS `web.config`.
    IisWebConfig,
    /// PowerShell script with the IIS settings that `web.config` cannot hold.
    IisScript,
    /// nftables rules.
    NftRules,
    /// iptables rules, in `iptables-restore` format.
    IptablesRules,
    /// ip6tables rules, in `ip6tables-restore` format.
    Ip6tablesRules,
    /// systemd unit that loads the firewall rules at boot.
    FirewallUnit,
    /// PowerShell script with Windows Firewall rules.
    WindowsFirewallScript,
    /// systemd unit.
    SystemdUnit,
    /// mxharden's m2ee-tools file, holding the admin password.
    M2eeInclude,
}

/// One generated file.
#[derive(Clone)]
pub struct Artifact {
    /// Its path on the host.
    pub path: AbsPath,
    /// Its purpose.
    pub kind: ArtifactKind,
    /// File contents.
    pub contents: String,
    /// Owner and group.
    pub owner: Owner,
    /// Permission bits.
    pub mode: u32,
    /// Whether the contents hold a secret and must never be shown.
    pub secret: bool,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("owner", &self.owner)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// Renders every file for `app`.
pub fn render_app(
    engine: &Engine,
    app: &AppSpec,
    context: &RenderContext,
    password: &AdminPassword,
) -> Result<Vec<Artifact>, RenderError> {
    let mut artifacts = Vec::new();
    let mut add = |path: AbsPath, kind, template: &str, owner, mode, secret: bool| -> Result<(), RenderError> {
        let contents = if secret {
            engine.render(template, &context.with_secret(password))?
        } else {
            engine.render(template, context)?
        };
        artifacts.push(Artifact {
            path,
            kind,
            contents,
            owner,
            mode,
            secret,
        });
        Ok(())
    };

    match app.proxy_kind {
        ProxyKind::Nginx => {
            add(layout::nginx_http(), ArtifactKind::NginxHttp, "nginx/http.conf.tera", Owner::Root, 0o644, false)?;
            add(layout::nginx_site(app), ArtifactKind::NginxSite, "nginx/site.conf.tera", Owner::Root, 0o644, false)?;
        }
        ProxyKind::Iis => {
            add(layout::iis_web_config(app), ArtifactKind::IisWebConfig, "iis/web.config.tera", Owner::Root, 0o644, false)?;
            add(layout::iis_script(app), ArtifactKind::IisScript, "iis/configure-iis.ps1.tera", Owner::Root, 0o644, false)?;
        }
    }
    if app.firewall == FirewallBackend::Nftables {
        add(layout::nft_rules(app), ArtifactKind::NftRules, "nftables/app.nft.tera", Owner::Root, 0o600, false)?;
    }
    add(layout::systemd_unit(app), ArtifactKind::SystemdUnit, "systemd/app.service.tera", Owner::Root, 0o644, false)?;
    add(layout::m2ee_include(app), ArtifactKind::M2eeInclude, "m2ee/mxharden.yaml.tera", Owner::AppUser, 0o600, true)?;
    Ok(artifacts)
}

/// Renders the nginx site with paths beneath `prefix`, for `nginx -t` on a `--root` tree.
pub fn render_nginx_check_copy(engine: &Engine, context: &RenderContext, prefix: &str) -> Result<String, RenderError> {
    engine.render("nginx/site.conf.tera", &context.beneath(prefix))
}

/// Renders a fresh `m2ee.yaml` for an app user who has none.
pub fn render_m2ee_main(engine: &Engine, context: &RenderContext) -> Result<String, RenderError> {
    engine.render("m2ee/m2ee.yaml.tera", context)
}
