//! Observing the host and building the plan for one app.

use mxharden_fs::{EntryKind, Meta, TreePolicy};
use mxharden_policy::RuntimePolicy;
use mxharden_render::{Artifact, ArtifactKind, Engine, Owner, RenderContext, layout};
use mxharden_spec::{AppSpec, ProxyKind};
use mxharden_spec::values::AbsPath;

use crate::accounts::Account;
use crate::certs;
use crate::checks::{self, CheckOutcome, check_nft_rules, check_nginx_site};
use crate::error::PlanError;
use crate::host::Host;
use crate::m2ee::{MainFileUpdate, main_file_sets_admin_pass, read_admin_pass, update_main_file};
use crate::password::{self, PasswordOrigin};
use crate::runtime::{RuntimeFinding, check_runtime};
use crate::state::{AppState, other_apps_using, read_state};
use crate::steps::{AccountStep, Activation, DirStep, FileKind, FileStep, OwnerSpec, Step, TreeStep, SkippedEntry};

/// The shell of every app account.
pub const NOLOGIN: &str = "/usr/sbin/nologin";

/// Largest generated or operator file read back, in bytes.
const FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// Permission bits removed from files under `model/` and `data/`.
const TREE_FILE_CLEAR_BITS: u32 = 0o077;

/// The account's ids when it exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppIds {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Everything known and decided about one app before anything changes.
pub struct AppPlan {
    /// The app.
    pub app: AppSpec,
    /// The runtime version check.
    pub runtime: RuntimeFinding,
    /// The account's ids, when it exists.
    pub ids: Option<AppIds>,
    /// Origin of the admin password.
    pub password_origin: PasswordOrigin,
    /// Checks the generated files passed or skipped.
    pub checks: Vec<CheckOutcome>,
    /// Warnings for the report.
    pub warnings: Vec<String>,
    /// The changes, in the order they run.
    pub steps: Vec<Step>,
}

impl AppPlan {
    /// Tells whether the plan changes anything.
    pub fn changes(&self) -> bool {
        self.steps.iter().any(Step::changes)
    }
}

/// Options that shape a plan.
pub struct PlanOptions<'a> {
    /// Loaded templates.
    pub engine: &'a Engine,
    /// Runtime version policy.
    pub policy: &'a RuntimePolicy,
    /// Scan trees to count entries to correct (dry runs do; apply corrects in one pass).
    pub scan_trees: bool,
}

/// Observes the host and plans every change for `app`. Renders and checks
/// every generated file first; writes nothing.
pub fn plan_app(host: &Host, app: &AppSpec, options: &PlanOptions<'_>) -> Result<AppPlan, PlanError> {
    let runtime = check_runtime(host, app, options.policy)?;
    let mut warnings = Vec::new();
    if let Some(reason) = &runtime.waived_because {
        warnings.push(format!(
            "runtime {} is refused by the policy but waived: {reason}",
            runtime.version.as_deref().unwrap_or("?")
        ));
    }
    if let Some(mxharden_policy::Verdict::OutOfSupport { line, .. }) = &runtime.verdict {
        warnings.push(format!(
            "runtime {} has its known fixes, but release line {line} receives no more security fixes; plan an upgrade to a supported line",
            runtime.version.as_deref().unwrap_or("?")
        ));
    }
    if runtime.version.is_none() {
        warnings.push(format!("{}/model/metadata.json is missing: no model is deployed, so the runtime version was not checked", app.base));
    }

    let account = check_account(host, app)?;
    let ids = account.as_ref().map(|a| AppIds { uid: a.uid, gid: a.gid });
    // A --root tree has no processes of its own, so the host's ports tell nothing about it.
    if host.live {
        crate::ports::check_ports_free(app, ids, &crate::ports::host_listeners())?;
    }

    let include_path = layout::m2ee_include(app);
    let state_path = layout::state_file(app);
    let existing_include = read_text(host, &include_path)?;
    let existing_password = match &existing_include {
        Some(text) => read_admin_pass(&host.host_path(include_path.as_str()).display().to_string(), text)?,
        None => None,
    };
    let recorded = read_state(host, state_path.as_str())?;
    let (password, password_origin) = password::choose(existing_password, recorded.as_ref().map(|s| s.admin_pass_argon2id.as_str()))?;
    if password_origin == PasswordOrigin::Adopted {
        warnings.push(format!(
            "the admin password in {include_path} does not match mxharden's record; it is kept and its hash recorded"
        ));
    }

    let mut context = RenderContext::new(app, runtime.version.as_deref());
    if app.proxy_kind == ProxyKind::Nginx {
        prepare_nginx(host, app, &mut context, &mut warnings)?;
    }
    let firewall_backend = crate::firewall::resolve(host, app)?;
    let mut artifacts = mxharden_render::render_app(options.engine, &crate::firewall::with_backend(app, firewall_backend), &context, &password)?;
    artifacts.extend(mxharden_firewall::render_artifacts(options.engine, app, firewall_backend, &context)?);
    check_checklist_values(&artifacts)?;
    let mut checks = check_artifacts(host, options.engine, &context, &artifacts)?;

    let mut steps = Vec::new();
    if account.is_none() {
        steps.push(Step::Account(AccountStep {
            user: app.user.to_string(),
            home: app.home.to_string(),
            shell: NOLOGIN.to_owned(),
        }));
    }
    plan_dirs(host, app, &artifacts, ids, &mut steps)?;
    plan_trees(host, app, ids, options.scan_trees, &mut steps)?;
    for artifact in &artifacts {
        plan_file(host, ids, artifact_target(artifact), &mut steps)?;
    }
    plan_m2ee_main(host, app, options.engine, &context, ids, &mut warnings, &mut steps)?;
    let state_hash = match (&recorded, password_origin) {
        (Some(record), PasswordOrigin::Kept) => record.admin_pass_argon2id.clone(),
        _ => password::hash(&password)?,
    };
    let state = AppState {
        app: app.name.to_string(),
        user: app.user.to_string(),
        admin_pass_argon2id: state_hash,
    };
    let state_target = Target {
        path: state_path,
        kind: FileKind::State,
        contents: state.to_text(),
        owner: OwnerSpec::Root,
        mode: 0o600,
        secret: false,
    };
    plan_file(host, ids, state_target, &mut steps)?;
    plan_activations(host, &mut steps);
    crate::firewall::plan_steps(host, app, firewall_backend, &artifacts, &mut checks, &mut warnings, &mut steps)?;

    Ok(AppPlan {
        app: app.clone(),
        runtime,
        ids,
        password_origin,
        checks,
        warnings,
        steps,
    })
}

/// Checks the certificate, the key and the files of the access rules, and
/// fills in what the nginx files need from the host: the key exchange
/// groups and, for OCSP stapling, the name servers.
fn prepare_nginx(host: &Host, app: &AppSpec, context: &mut RenderContext, warnings: &mut Vec<String>) -> Result<(), PlanError> {
    let findings = certs::check_certificate(host, app, jiff::Timestamp::now())?;
    warnings.extend(findings.warnings);
    warnings.extend(crate::access::check_access_files(host, app)?);
    if let Some(responder) = findings.ocsp_responder {
        let resolvers = certs::resolvers(host)?;
        if resolvers.is_empty() {
            warnings.push(format!(
                "the certificate names the OCSP responder {responder}, but /etc/resolv.conf lists no name server, so OCSP stapling stays off"
            ));
        }
        context.set_ocsp_resolvers(resolvers);
    }
    context.set_ecdh_curve(checks::nginx_ecdh_groups());
    checks::check_foreign_default_servers(host)?;
    Ok(())
}

/// Returns the account when it exists, after checking that it is safe to
/// run the app: not root, no login shell, its own group, the expected home,
/// and no other app's account.
fn check_account(host: &Host, app: &AppSpec) -> Result<Option<Account>, PlanError> {
    let user = app.user.as_str();
    if let Some(other) = other_apps_using(host, "/var/lib/mxharden/apps", app.name.as_str(), user)? {
        return Err(PlanError::Conflict(format!(
            "{}: account {user} already runs app {other}; every app needs its own account (set app.user)",
            app.source.display()
        )));
    }
    let Some(account) = host.accounts.user(user)? else {
        if host.accounts.group(user)?.is_some() {
            return Err(PlanError::Conflict(format!(
                "group {user} exists without a user of that name; remove the group or choose another app.user"
            )));
        }
        return Ok(None);
    };
    let mut problems = Vec::new();
    if account.uid == 0 || account.gid == 0 {
        problems.push("it has uid or gid 0".to_owned());
    }
    if account.uid >= FIRST_LOGIN_UID {
        problems.push(format!("its uid {} is a login user's, not a system account's (below {FIRST_LOGIN_UID})", account.uid));
    }
    if has_password(host, user)? {
        problems.push("it has a password in /etc/shadow".to_owned());
    }
    if account.shell != NOLOGIN && account.shell != "/bin/false" && account.shell != "/usr/bin/false" {
        problems.push(format!("its shell is {}, expected {NOLOGIN}", account.shell));
    }
    if account.home != app.home.as_str() {
        problems.push(format!("its home is {}, expected {}", account.home, app.home));
    }
    match host.accounts.group_by_id(account.gid)? {
        Some(group) if group.name != user => problems.push(format!("its primary group is {}, expected {user}", group.name)),
        Some(group) if !group.members.iter().all(|m| m == user) => {
            problems.push(format!("its group {user} has other members: {}", group.members.join(", ")))
        }
        None => problems.push(format!("its primary group {} does not exist", account.gid)),
        _ => {}
    }
    if !problems.is_empty() {
        return Err(PlanError::Conflict(format!(
            "account {user} exists but {}; mxharden does not change existing accounts: fix it with usermod, or choose another app.user",
            problems.join("; ")
        )));
    }
    Ok(Some(account))
}

/// The first uid of login users: Debian's `login.defs` sets `UID_MIN 1000`
/// and keeps lower ids for system accounts.
const FIRST_LOGIN_UID: u32 = 1000;

/// Tells whether `/etc/shadow` gives `user` a usable password. A field that
/// is empty or starts with `!` or `*` allows no password login.
fn has_password(host: &Host, user: &str) -> Result<bool, PlanError> {
    let bytes = match host.root.read_file("/etc/shadow", FILE_LIMIT) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(false),
        // An ordinary user's dry run cannot read it; apply runs as root.
        Err(mxharden_fs::FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => return Ok(false),
        Err(error) => return Err(error.into()),
    };
    let text = String::from_utf8_lossy(&bytes);
    let field = text
        .lines()
        .find_map(|line| line.strip_prefix(user)?.strip_prefix(':'))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default();
    Ok(!field.is_empty() && !field.starts_with('!') && !field.starts_with('*'))
}

fn ids_for(owner: OwnerSpec, ids: Option<AppIds>) -> Option<(u32, u32)> {
    match owner {
        OwnerSpec::Root => Some((0, 0)),
        OwnerSpec::App => ids.map(|i| (i.uid, i.gid)),
    }
}

/// Compares current metadata with the wanted owner and mode.
fn meta_changes(meta: &Meta, owner: OwnerSpec, mode: u32, ids: Option<AppIds>) -> (Option<String>, Option<u32>) {
    let owner_ok = ids_for(owner, ids) == Some((meta.uid, meta.gid));
    let owner_from = (!owner_ok).then(|| format!("{}:{}", meta.uid, meta.gid));
    let mode_from = (meta.mode != mode).then_some(meta.mode);
    (owner_from, mode_from)
}

fn plan_dir(host: &Host, path: AbsPath, owner: OwnerSpec, mode: u32, enforce: bool, ids: Option<AppIds>, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    match host.root.meta(path.as_str())? {
        None => steps.push(Step::Dir(DirStep {
            path,
            owner,
            mode,
            create: true,
            owner_from: None,
            mode_from: None,
        })),
        Some(meta) if meta.kind != EntryKind::Dir => {
            return Err(PlanError::Conflict(format!(
                "{} is {}, expected a folder; move it away and run again",
                host.host_path(path.as_str()).display(),
                meta.kind.describe()
            )));
        }
        Some(meta) if enforce => {
            let (owner_from, mode_from) = meta_changes(&meta, owner, mode, ids);
            if owner_from.is_some() || mode_from.is_some() {
                steps.push(Step::Dir(DirStep {
                    path,
                    owner,
                    mode,
                    create: false,
                    owner_from,
                    mode_from,
                }));
            }
        }
        Some(_) => {}
    }
    Ok(())
}

fn abs(text: &str) -> AbsPath {
    text.parse().expect("constant paths are valid")
}

fn plan_dirs(host: &Host, app: &AppSpec, artifacts: &[Artifact], ids: Option<AppIds>, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    let base = &app.base;
    plan_dir(host, base.clone(), OwnerSpec::Root, 0o755, true, ids, steps)?;
    plan_dir(host, base.join("model"), OwnerSpec::App, 0o700, true, ids, steps)?;
    plan_dir(host, base.join("data"), OwnerSpec::App, 0o700, true, ids, steps)?;
    plan_dir(host, base.join("web"), OwnerSpec::App, 0o755, true, ids, steps)?;
    if app.home != app.base {
        plan_dir(host, app.home.clone(), OwnerSpec::App, 0o700, true, ids, steps)?;
    }
    plan_dir(host, layout::m2ee_dir(app), OwnerSpec::App, 0o700, true, ids, steps)?;
    plan_dir(host, abs("/var/lib/mxharden"), OwnerSpec::Root, 0o700, true, ids, steps)?;
    plan_dir(host, abs("/var/lib/mxharden/apps"), OwnerSpec::Root, 0o700, true, ids, steps)?;
    plan_dir(host, abs("/etc/mxharden"), OwnerSpec::Root, 0o755, true, ids, steps)?;
    // Only the folders of files this app really writes; the app user's own
    // files live in folders planned above.
    let mut parents: Vec<AbsPath> = Vec::new();
    for artifact in artifacts.iter().filter(|a| a.owner == Owner::Root) {
        let parent = artifact.path.parent().expect("artifact paths have a parent");
        // Several files share a folder (conf.d, systemd/system); plan it once.
        if parents.contains(&parent) {
            continue;
        }
        parents.push(parent.clone());
        let ours = parent.is_within(&abs("/etc/mxharden"));
        let mode = if ["/etc/mxharden/nftables", "/etc/mxharden/iptables"].contains(&parent.as_str()) { 0o700 } else { 0o755 };
        plan_dir(host, parent, OwnerSpec::Root, mode, ours, ids, steps)?;
    }
    Ok(())
}

fn plan_trees(host: &Host, app: &AppSpec, ids: Option<AppIds>, scan: bool, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    for name in ["model", "data"] {
        let path = app.base.join(name);
        if !scan {
            steps.push(Step::Tree(TreeStep {
                path,
                noncompliant: None,
                examined: None,
                skipped: Vec::new(),
                skipped_unlisted: 0,
                links: 0,
            }));
            continue;
        }
        // Before the account exists no entry can belong to it: u32::MAX
        // matches no owner, so every entry counts.
        let (uid, gid) = ids.map(|i| (i.uid, i.gid)).unwrap_or((u32::MAX, u32::MAX));
        let policy = TreePolicy {
            uid,
            gid,
            dir_mode: 0o700,
            file_clear_bits: TREE_FILE_CLEAR_BITS,
        };
        let report = mxharden_fs::walk_tree(&host.root, path.as_str(), policy, false, &mut |_| {})?;
        // The top folder is planned as a folder step already.
        let noncompliant = report.noncompliant.saturating_sub(u64::from(host.root.meta(path.as_str())?.is_some_and(|m| {
            ids_for(OwnerSpec::App, ids) != Some((m.uid, m.gid)) || m.mode != 0o700
        })));
        steps.push(Step::Tree(TreeStep {
            path,
            noncompliant: Some(noncompliant),
            examined: Some(report.examined),
            skipped: report.skipped.iter().map(SkippedEntry::from).collect(),
            skipped_unlisted: report.skipped_unlisted,
            links: report.links,
        }));
    }
    Ok(())
}

/// Exported for apply: the tree policy for an app's ids.
pub fn tree_policy(ids: AppIds) -> TreePolicy {
    TreePolicy {
        uid: ids.uid,
        gid: ids.gid,
        dir_mode: 0o700,
        file_clear_bits: TREE_FILE_CLEAR_BITS,
    }
}

/// A file to have on disk.
struct Target {
    path: AbsPath,
    kind: FileKind,
    contents: String,
    owner: OwnerSpec,
    mode: u32,
    secret: bool,
}

fn artifact_target(artifact: &Artifact) -> Target {
    Target {
        path: artifact.path.clone(),
        kind: FileKind::Generated(artifact.kind),
        contents: artifact.contents.clone(),
        owner: match artifact.owner {
            Owner::Root => OwnerSpec::Root,
            Owner::AppUser => OwnerSpec::App,
        },
        mode: artifact.mode,
        secret: artifact.secret,
    }
}

fn read_text(host: &Host, path: &AbsPath) -> Result<Option<String>, PlanError> {
    let Some(bytes) = host.root.read_file(path.as_str(), FILE_LIMIT)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| PlanError::Conflict(format!("{}: not UTF-8 text; move it away and run again", host.host_path(path.as_str()).display())))
}

fn plan_file(host: &Host, ids: Option<AppIds>, target: Target, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    let before = read_text(host, &target.path)?;
    let meta = host.root.meta(target.path.as_str())?;
    let content_changes = before.as_deref() != Some(target.contents.as_str());
    let (owner_from, mode_from) = match &meta {
        Some(meta) => meta_changes(meta, target.owner, target.mode, ids),
        None => (None, None),
    };
    if !content_changes && owner_from.is_none() && mode_from.is_none() {
        return Ok(());
    }
    steps.push(Step::File(FileStep {
        path: target.path,
        kind: target.kind,
        before,
        after: target.contents,
        owner: target.owner,
        mode: target.mode,
        secret: target.secret,
        content_changes,
        owner_from,
        mode_from,
    }));
    Ok(())
}

fn plan_m2ee_main(
    host: &Host,
    app: &AppSpec,
    engine: &Engine,
    context: &RenderContext,
    ids: Option<AppIds>,
    warnings: &mut Vec<String>,
    steps: &mut Vec<Step>,
) -> Result<(), PlanError> {
    let path = layout::m2ee_main(app);
    let origin = host.host_path(path.as_str()).display().to_string();
    let existing = read_text(host, &path)?;
    if existing.as_deref().is_some_and(|text| main_file_sets_admin_pass(&origin, text)) {
        warnings.push(format!(
            "{path} sets its own admin_pass; mxharden's include file overrides it, but remove it so the password is kept in one place"
        ));
    }
    let fresh = mxharden_render::render_m2ee_main(engine, context)?;
    let contents = match update_main_file(&origin, existing.as_deref(), &fresh, layout::m2ee_include(app).as_str())? {
        MainFileUpdate::Unchanged => existing.unwrap_or_default(),
        MainFileUpdate::Rewrite(text) => text,
    };
    let target = Target {
        path,
        kind: FileKind::M2eeMain,
        contents,
        owner: OwnerSpec::App,
        mode: 0o600,
        secret: false,
    };
    plan_file(host, ids, target, steps)
}

fn check_artifacts(host: &Host, engine: &Engine, context: &RenderContext, artifacts: &[Artifact]) -> Result<Vec<CheckOutcome>, PlanError> {
    let mut outcomes = Vec::new();
    let http = artifacts.iter().find(|a| a.kind == ArtifactKind::NginxHttp).map(|a| a.contents.as_str());
    for artifact in artifacts {
        match artifact.kind {
            ArtifactKind::NginxSite => {
                let site = if host.live {
                    artifact.contents.clone()
                } else {
                    mxharden_render::render_nginx_check_copy(engine, context, &host.path_prefix())?
                };
                let files: Vec<&str> = http.into_iter().chain([site.as_str()]).collect();
                outcomes.push(check_nginx_site(&files, host.live)?);
            }
            ArtifactKind::NftRules => outcomes.push(check_nft_rules(&artifact.contents, host.live)?),
            _ => {}
        }
    }
    Ok(outcomes)
}

/// Adds the reloads that changed files need; none on a `--root` tree.
fn plan_activations(host: &Host, steps: &mut Vec<Step>) {
    if !host.live {
        return;
    }
    let changed = |kind: ArtifactKind| {
        steps.iter().any(|step| matches!(step, Step::File(file) if file.content_changes && file.kind == FileKind::Generated(kind)))
    };
    // nginx goes first: its full-configuration test is the step most likely
    // to fail, and it fails before the firewall or systemd saw any change.
    // TODO: a failure after nginx reloaded leaves it on the new site while
    // the file is rolled back; reload it again during rollback.
    let mut activations = Vec::new();
    if changed(ArtifactKind::NginxSite) || changed(ArtifactKind::NginxHttp) {
        activations.push(Activation::ReloadNginx);
    }
    // The firewall rules are loaded by the firewall steps that follow.
    if changed(ArtifactKind::SystemdUnit) || changed(ArtifactKind::FirewallUnit) {
        activations.push(Activation::ReloadSystemd);
    }
    steps.extend(activations.into_iter().map(Step::Activate));
}

/// Checks the rendered files for the values the checklist depends on, so a
/// replaced template that drops one fails before anything is written. Every
/// nginx site must set both forwarded-scheme headers to `https`, and the m2ee
/// file must set production mode and a loopback-only admin API.
fn check_checklist_values(artifacts: &[Artifact]) -> Result<(), PlanError> {
    let missing = |path: &AbsPath, what: &str| {
        PlanError::Conflict(format!("{path}: the rendered file lacks {what}; check the templates given with --templates"))
    };
    for artifact in artifacts {
        match artifact.kind {
            ArtifactKind::NginxSite => {
                for header in ["proxy_set_header X-Forwarded-Scheme https;", "proxy_set_header X-Forwarded-Proto https;"] {
                    if !artifact.contents.contains(header) {
                        return Err(missing(&artifact.path, header));
                    }
                }
            }
            ArtifactKind::M2eeInclude => {
                let value = crate::m2ee::parse_yaml(artifact.path.as_str(), &artifact.contents)?;
                if value["mxruntime"]["DTAPMode"] != "P" {
                    return Err(missing(&artifact.path, "mxruntime.DTAPMode: \"P\""));
                }
                let admin = value["m2ee"]["admin_listen_addresses"].as_str().unwrap_or_default();
                let loopback = !admin.is_empty()
                    && admin.split(',').all(|a| a.trim().parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
                if !loopback {
                    return Err(missing(&artifact.path, "loopback-only m2ee.admin_listen_addresses"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
