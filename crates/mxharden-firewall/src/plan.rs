//! Planning the firewall part of an app's apply, and of its removal.

use mxharden_fs::RootDir;
use mxharden_render::{Artifact, ArtifactKind, Engine, Owner, RenderContext, layout};
use mxharden_spec::AppSpec;
use mxharden_spec::values::AbsPath;

use crate::change::{Change, link_target};
use crate::command;
use crate::detect::Backend;
use crate::error::FirewallError;
use crate::{docker, firewalld, iptables, nftables, ssh, ufw};


/// The firewall part of one app's plan.
#[derive(Debug, Default)]
pub struct FirewallPlan {
    /// Changes, in the order they run, after every file was written.
    pub changes: Vec<Change>,
    /// Tool checks of the rendered rules: the tool, or why the check was skipped.
    pub checks: Vec<Result<String, String>>,
    /// Warnings for the report.
    pub warnings: Vec<String>,
}

/// Renders the files that `backend` needs besides the nftables rules file,
/// which `mxharden_render::render_app` writes: the iptables and ip6tables
/// rules files, and the unit that loads the rules at boot.
pub fn render_artifacts(engine: &Engine, app: &AppSpec, backend: Option<Backend>, context: &RenderContext) -> Result<Vec<Artifact>, FirewallError> {
    let mut artifacts = Vec::new();
    let mut add = |path: AbsPath, kind: ArtifactKind, template: &str, mode: u32| -> Result<(), FirewallError> {
        artifacts.push(Artifact {
            path,
            kind,
            contents: engine.render(template, context)?,
            owner: Owner::Root,
            mode,
            secret: false,
        });
        Ok(())
    };
    match backend {
        None | Some(Backend::Ufw) | Some(Backend::Firewalld) => {}
        Some(Backend::Nftables) => {
            add(layout::firewall_unit(app), ArtifactKind::FirewallUnit, "firewall/nftables.service.tera", 0o644)?;
        }
        Some(Backend::Windows) => {
            add(layout::windows_firewall_script(app), ArtifactKind::WindowsFirewallScript, "firewall/windows.ps1.tera", 0o644)?;
        }
        Some(Backend::Iptables) => {
            add(layout::iptables_rules(app), ArtifactKind::IptablesRules, "firewall/iptables.v4.tera", 0o600)?;
            add(layout::ip6tables_rules(app), ArtifactKind::Ip6tablesRules, "firewall/iptables.v6.tera", 0o600)?;
            add(layout::firewall_unit(app), ArtifactKind::FirewallUnit, "firewall/iptables.service.tera", 0o644)?;
        }
    }
    Ok(artifacts)
}

fn contents_of(artifacts: &[Artifact], kind: ArtifactKind) -> Option<&str> {
    artifacts.iter().find(|a| a.kind == kind).map(|a| a.contents.as_str())
}

/// Returns the rules files of `backend`, in load order.
pub fn rules_files(app: &AppSpec, backend: Backend) -> Vec<AbsPath> {
    match backend {
        Backend::Nftables => vec![layout::nft_rules(app)],
        Backend::Iptables => vec![layout::iptables_rules(app), layout::ip6tables_rules(app)],
        Backend::Ufw | Backend::Firewalld => Vec::new(),
        Backend::Windows => vec![layout::windows_firewall_script(app)],
    }
}

/// Returns the nftables table or iptables chain of `backend`.
pub fn rules_name(app: &AppSpec, backend: Backend) -> String {
    match backend {
        Backend::Nftables => layout::nft_table(app),
        Backend::Iptables => layout::iptables_chain(app),
        Backend::Ufw => ufw::comment(app),
        Backend::Firewalld => firewalld::policy_name(app),
        Backend::Windows => format!("mxharden {}", app.name),
    }
}

/// Plans the firewall changes for `app` after its files are written.
///
/// `artifacts` are every rendered file of the app. `rules_changed` is true
/// when a rules file's contents change in this run. On the live
/// host (`live`) it also rejects a runtime port that a container engine
/// publishes, and compares the live rules with the rendered ones, so a
/// drift is shown as a diff and corrected by loading the rules again.
pub fn plan_firewall(
    root: &RootDir,
    live: bool,
    app: &AppSpec,
    backend: Option<Backend>,
    artifacts: &[Artifact],
    rules_changed: bool,
) -> Result<FirewallPlan, FirewallError> {
    let mut plan = FirewallPlan::default();
    let runtime_port = app.runtime_port.get();
    let admin_port = app.admin_port.get();
    if backend.is_some() {
        ssh::reject_ssh_overlap(&ssh::sshd_ports(root)?, runtime_port, admin_port)?;
    }
    if live {
        if command::is_root() {
            docker::reject_published(runtime_port, &docker::live_publications(runtime_port)?)?;
        } else {
            plan.warnings.push("container engines that publish the runtime port were not looked for: reading the live ruleset needs root".to_owned());
        }
    }

    // A backend chosen before, or a removed one, leaves files and rules that this run deletes.
    for other in ALL_BACKENDS.into_iter().filter(|b| Some(*b) != backend) {
        plan.changes.extend(removal_of(root, live, app, other)?);
    }
    let Some(backend) = backend else {
        plan.changes.extend(unit_removal(root, app)?);
        return Ok(plan);
    };
    if backend == Backend::Windows {
        plan.changes.extend(unit_removal(root, app)?);
        plan.warnings.push(format!(
            "copy {} to the Windows host and run it as Administrator. Windows Firewall does not filter loopback traffic, \
             so the admin port is kept from processes on that host only by its listen address (127.0.0.1 and ::1)",
            layout::windows_firewall_script(app)
        ));
        return Ok(plan);
    }
    if backend == Backend::Ufw {
        // ufw keeps its rules across reboots itself, so no unit of mxharden's loads them.
        plan.changes.extend(unit_removal(root, app)?);
        plan_ufw(root, live, app, &mut plan)?;
        return Ok(plan);
    }
    if backend == Backend::Firewalld {
        // firewalld keeps its permanent configuration across reboots itself.
        plan.changes.extend(unit_removal(root, app)?);
        plan_firewalld(live, app, &mut plan)?;
        return Ok(plan);
    }

    // The plan stage checks the nftables file with the other generated files.
    if backend == Backend::Iptables {
        let v4 = contents_of(artifacts, ArtifactKind::IptablesRules).expect("the iptables rules are rendered");
        let v6 = contents_of(artifacts, ArtifactKind::Ip6tablesRules).expect("the ip6tables rules are rendered");
        plan.checks.push(iptables::check(v4, v6, live)?.map(|()| "iptables-restore --test, ip6tables-restore --test".to_owned()));
    }

    let link = layout::firewall_unit_link(app);
    let target = layout::firewall_unit(app);
    if link_target(root, &link)?.as_deref() != Some(target.as_str()) {
        plan.changes.push(Change::EnableUnit { link, target });
    }

    if !live {
        return Ok(plan);
    }
    if !command::is_root() {
        plan.warnings.push(format!("the live {} rules were not compared with the saved ones: reading them needs root", backend.name()));
        return Ok(plan);
    }
    let name = rules_name(app, backend);
    let (desired, current) = match backend {
        Backend::Nftables => {
            let rules = contents_of(artifacts, ArtifactKind::NftRules).expect("the nftables rules are rendered");
            (nftables::canonical(rules, &name)?, nftables::live_table(&name)?)
        }
        Backend::Iptables => {
            let v4 = contents_of(artifacts, ArtifactKind::IptablesRules).expect("the iptables rules are rendered");
            let v6 = contents_of(artifacts, ArtifactKind::Ip6tablesRules).expect("the ip6tables rules are rendered");
            (iptables::canonical(v4, v6, &name)?, iptables::live_chains(&name)?)
        }
        Backend::Ufw | Backend::Firewalld | Backend::Windows => unreachable!("ufw, firewalld and windows return above"),
    };
    let live_matches = current.as_deref() == Some(desired.as_str());
    if rules_changed || !live_matches {
        // A diff only helps when the saved file is unchanged: otherwise the
        // file's own diff already shows what is loaded.
        let drift = (!rules_changed).then(|| drift_diff(backend, &name, current.as_deref(), &desired));
        plan.changes.push(Change::Load {
            backend,
            name,
            files: rules_files(app, backend),
            rules: Vec::new(),
            drift,
        });
    }
    Ok(plan)
}

/// Every backend that writes rules.
const ALL_BACKENDS: [Backend; 5] = [Backend::Nftables, Backend::Iptables, Backend::Ufw, Backend::Firewalld, Backend::Windows];

/// Returns true when a manager's command (`program`) may run: only on the live
/// host, and only as root. Otherwise records why its check was skipped.
fn manager_usable(live: bool, backend: Backend, program: &str, plan: &mut FirewallPlan) -> bool {
    let skipped = if !live {
        format!("{} rules are checked and added only on the live host", backend.name())
    } else if !command::is_root() {
        format!("{program} needs root")
    } else {
        return true;
    };
    plan.checks.push(Err(skipped));
    false
}

/// Plans the firewalld policy: its rich rules checked with firewalld's
/// parser, the live policy compared with the desired one, and the policy
/// replaced when they differ. firewall-cmd runs only on the live host.
fn plan_firewalld(live: bool, app: &AppSpec, plan: &mut FirewallPlan) -> Result<(), FirewallError> {
    if !manager_usable(live, Backend::Firewalld, "firewall-cmd", plan) {
        return Ok(());
    }
    firewalld::check(app)?;
    plan.checks.push(Ok("firewall-cmd --query-rich-rule".to_owned()));
    let name = firewalld::policy_name(app);
    let current = firewalld::live_policy(&name)?;
    let desired = firewalld::desired_listing(app);
    if current.as_deref() != Some(desired.as_str()) {
        plan.changes.push(Change::Load {
            backend: Backend::Firewalld,
            drift: Some(drift_diff(Backend::Firewalld, &name, current.as_deref(), &desired)),
            name,
            files: Vec::new(),
            rules: firewalld::desired_rules(app),
        });
    }
    Ok(())
}

/// Plans the ufw rules: checked with `ufw --dry-run`, compared with ufw's
/// rule files, and replaced when they differ. ufw runs only on the live host.
fn plan_ufw(root: &RootDir, live: bool, app: &AppSpec, plan: &mut FirewallPlan) -> Result<(), FirewallError> {
    if !manager_usable(live, Backend::Ufw, "ufw", plan) {
        return Ok(());
    }
    ufw::check(app)?;
    plan.checks.push(Ok("ufw --dry-run".to_owned()));
    let live_tuples = ufw::live_tuples(root)?;
    ufw::reject_conflicts(app, &live_tuples)?;
    let (current, desired) = ufw::listings(app, &live_tuples);
    if current != desired {
        let name = ufw::comment(app);
        let drift = similar::TextDiff::from_lines(&current, &desired)
            .unified_diff()
            .context_radius(3)
            .header(&format!("live ufw rules {name}"), &format!("desired ufw rules {name}"))
            .to_string();
        plan.changes.push(Change::Load {
            backend: Backend::Ufw,
            name,
            files: Vec::new(),
            rules: ufw::desired_tuples(app),
            drift: Some(drift),
        });
    }
    Ok(())
}

/// Returns a unified diff from the live rules to the desired ones.
pub fn drift_diff(backend: Backend, name: &str, live: Option<&str>, desired: &str) -> String {
    let before = live.unwrap_or("");
    let old_header = match live {
        Some(_) => format!("live {} rules {name}", backend.name()),
        None => format!("live {} rules {name} (missing)", backend.name()),
    };
    similar::TextDiff::from_lines(before, desired)
        .unified_diff()
        .context_radius(3)
        .header(&old_header, &format!("desired {} rules {name}", backend.name()))
        .to_string()
}

/// Plans deleting every firewall file, link and live rule of `app`, for
/// `mxharden remove`. Nothing else of the app or the host is touched.
pub fn plan_removal(root: &RootDir, live: bool, app: &AppSpec) -> Result<Vec<Change>, FirewallError> {
    let mut changes = Vec::new();
    for backend in ALL_BACKENDS {
        changes.extend(removal_of(root, live, app, backend)?);
    }
    changes.extend(unit_removal(root, app)?);
    Ok(changes)
}

/// Plans deleting the boot unit and its link.
fn unit_removal(root: &RootDir, app: &AppSpec) -> Result<Vec<Change>, FirewallError> {
    let mut changes = Vec::new();
    for path in [layout::firewall_unit_link(app), layout::firewall_unit(app)] {
        if root.meta(path.as_str())?.is_some() {
            changes.push(Change::Remove { path });
        }
    }
    Ok(changes)
}

/// Plans deleting the live rules and the rules files of `backend`.
fn removal_of(root: &RootDir, live: bool, app: &AppSpec, backend: Backend) -> Result<Vec<Change>, FirewallError> {
    let mut changes = Vec::new();
    let name = rules_name(app, backend);
    if live && command::is_root() {
        let present = match backend {
            Backend::Nftables => command::find_program("nft").is_some() && nftables::live_table(&name)?.is_some(),
            Backend::Iptables => command::find_program("iptables").is_some() && iptables::live_chains(&name)?.is_some(),
            Backend::Ufw => command::find_program("ufw").is_some() && ufw::marked_tuples(root, &name)?.is_some(),
            Backend::Firewalld => firewalld::running() && firewalld::live_policy(&name)?.is_some(),
            Backend::Windows => false,
        };
        if present {
            changes.push(Change::Unload { backend, name });
        }
    }
    for path in rules_files(app, backend) {
        if root.meta(path.as_str())?.is_some() {
            changes.push(Change::Remove { path });
        }
    }
    Ok(changes)
}
