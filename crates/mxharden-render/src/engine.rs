//! The Tera engine with mxharden's templates and output filters.

use std::path::{Path, PathBuf};

use tera::{Context, Tera};

use crate::context::RenderContext;
use crate::filters;

/// Templates built into the binary, by name. A file of the same name in the
/// override folder replaces one.
pub const BUILT_IN_TEMPLATES: &[(&str, &str)] = &[
    ("nginx/headers.conf.tera", include_str!("../../../templates/nginx/headers.conf.tera")),
    ("nginx/proxy-headers.conf.tera", include_str!("../../../templates/nginx/proxy-headers.conf.tera")),
    ("nginx/proxy-runtime.conf.tera", include_str!("../../../templates/nginx/proxy-runtime.conf.tera")),
    ("nginx/proxy-websocket.conf.tera", include_str!("../../../templates/nginx/proxy-websocket.conf.tera")),
    ("nginx/proxy-upload.conf.tera", include_str!("../../../templates/nginx/proxy-upload.conf.tera")),
    ("nginx/access-checks.conf.tera", include_str!("../../../templates/nginx/access-checks.conf.tera")),
    ("nginx/access-target.conf.tera", include_str!("../../../templates/nginx/access-target.conf.tera")),
    ("nginx/access-rule.conf.tera", include_str!("../../../templates/nginx/access-rule.conf.tera")),
    ("nginx/site.conf.tera", include_str!("../../../templates/nginx/site.conf.tera")),
    ("nginx/http.conf.tera", include_str!("../../../templates/nginx/http.conf.tera")),
    ("iis/web.config.tera", include_str!("../../../templates/iis/web.config.tera")),
    ("iis/configure-iis.ps1.tera", include_str!("../../../templates/iis/configure-iis.ps1.tera")),
    ("nftables/app.nft.tera", include_str!("../../../templates/nftables/app.nft.tera")),
    ("firewall/nftables.service.tera", include_str!("../../../templates/firewall/nftables.service.tera")),
    ("firewall/iptables.v4.tera", include_str!("../../../templates/firewall/iptables.v4.tera")),
    ("firewall/iptables.v6.tera", include_str!("../../../templates/firewall/iptables.v6.tera")),
    ("firewall/iptables.service.tera", include_str!("../../../templates/firewall/iptables.service.tera")),
    ("firewall/windows.ps1.tera", include_str!("../../../templates/firewall/windows.ps1.tera")),
    ("systemd/app.service.tera", include_str!("../../../templates/systemd/app.service.tera")),
    ("m2ee/mxharden.yaml.tera", include_str!("../../../templates/m2ee/mxharden.yaml.tera")),
    ("m2ee/m2ee.yaml.tera", include_str!("../../../templates/m2ee/m2ee.yaml.tera")),
];

/// A template failed to load or render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An override template could not be read.
    #[error("{path}: cannot read the template: {source}")]
    Read {
        /// The template file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A template has a syntax error or failed to render.
    #[error("template {name}: {message}")]
    Template {
        /// The template name.
        name: String,
        /// Tera's message, with its causes.
        message: String,
    },
}

fn template_error(name: &str, error: &tera::Error) -> RenderError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RenderError::Template {
        name: name.to_owned(),
        message,
    }
}

/// The loaded templates.
pub struct Engine {
    tera: Tera,
}

impl Engine {
    /// Loads the built-in templates, each replaced by a file of the same
    /// name under `overrides` when that folder has one.
    pub fn load(overrides: Option<&Path>) -> Result<Engine, RenderError> {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        tera.register_filter("nginx", filters::nginx);
        tera.register_filter("nginx_str", filters::nginx_str);
        tera.register_filter("nft", filters::nft);
        tera.register_filter("iptables", filters::iptables);
        tera.register_filter("powershell", filters::powershell);
        tera.register_filter("systemd", filters::systemd);
        tera.register_filter("yaml", filters::yaml);
        tera.register_filter("xml", filters::xml);
        tera.register_filter("num", filters::num);
        for (name, built_in) in BUILT_IN_TEMPLATES {
            let text = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.is_file() => {
                    let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Read { path: path.clone(), source })?;
                    check_output_filters(&path.display().to_string(), &text)?;
                    text
                }
                _ => (*built_in).to_owned(),
            };
            tera.add_raw_template(name, &text).map_err(|e| template_error(name, &e))?;
        }
        Ok(Engine { tera })
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: &RenderContext) -> Result<String, RenderError> {
        let context = Context::from_serialize(context).map_err(|e| template_error(name, &e))?;
        self.tera.render(name, &context).map_err(|e| template_error(name, &e))
    }

    /// Returns the top-level variable names that template `name` uses.
    pub fn variables(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .tera
            .get_template_variables(name)
            .map(|set| set.into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Checks that every `{{ }}` expression of an override template ends in one
/// of the output filters, as the built-in templates do, so an override
/// cannot write a value unchecked.
pub fn check_output_filters(origin: &str, text: &str) -> Result<(), RenderError> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let expression = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        let last_filter = expression.rsplit_once('|').map(|(_, filter)| filter.trim());
        let name = last_filter.map(|filter| filter.split('(').next().unwrap_or_default().trim());
        if !name.is_some_and(|name| filters::OUTPUT_FILTERS.contains(&name)) {
            let line = text[..text.len() - rest.len() + start].lines().count().max(1);
            return Err(RenderError::Template {
                name: origin.to_owned(),
                message: format!(
                    "line {line}: {{{{ {expression} }}}} does not end in an output filter; end it with one of {}",
                    filters::OUTPUT_FILTERS.join(", ")
                ),
            });
        }
        rest = &after[end + 2..];
    }
    Ok(())
}
