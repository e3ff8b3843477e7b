//! Per-format output filters. Every `{{ }}` in a template ends in one of them.
//!
//! Values are checked when they are parsed, so these filters never receive
//! a delimiter in practice. They reject one anyway, so a template that is
//! handed an unchecked value fails to render instead of emitting it.

use tera::{Error, Kwargs, State, TeraResult, Value};

/// Characters allowed bare in nginx, nft and systemd values.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._/:@+-[],*".contains(c)
}

fn plain(value: &str, format: &str) -> TeraResult<String> {
    if value.is_empty() || !value.chars().all(is_plain) {
        return Err(Error::message(format!(
            "value {value:?} cannot be written into {format} without quoting"
        )));
    }
    Ok(value.to_owned())
}

/// Writes a bare nginx word.
pub fn nginx(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    plain(value, "an nginx directive")
}

/// Writes a value as a double-quoted nginx string. `$` would start a
/// variable and `\\` an escape inside it, so both are rejected along with
/// `"` and control characters.
pub fn nginx_str(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    let bad = |c: char| !(c.is_ascii_graphic() || c == ' ') || "\"\\$".contains(c);
    if value.is_empty() || value.chars().any(bad) {
        return Err(Error::message(format!(
            "value {value:?} cannot be written into an nginx string"
        )));
    }
    Ok(format!("\"{value}\""))
}

/// Writes a bare nft word (table names, addresses, prefixes).
pub fn nft(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    plain(value, "an nft rule")
}

/// Writes a bare iptables-restore word (chain names, addresses, prefixes).
pub fn iptables(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    plain(value, "an iptables rule")
}

/// Writes a systemd unit value, doubling `%` so specifiers are not expanded.
pub fn systemd(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    plain(value, "a systemd unit").map(|v| v.replace('%', "%%"))
}

/// Writes a YAML double-quoted scalar. JSON string syntax is valid YAML 1.2.
pub fn yaml(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    if value.chars().any(char::is_control) {
        return Err(Error::message("a control character cannot be written into YAML"));
    }
    serde_json::to_string(value).map_err(Error::message)
}

/// Writes XML text or attribute content.
pub fn xml(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    if value.chars().any(char::is_control) {
        return Err(Error::message("a control character cannot be written into XML"));
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Writes a PowerShell single-quoted string literal; a quote is doubled, which is
/// the only escape inside single quotes. PowerShell also ends such strings
/// at the typographic quotes U+2018 to U+201B, so those are doubled too.
pub fn powershell(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    if value.chars().any(char::is_control) {
        return Err(Error::message("a control character cannot be written into a PowerShell string"));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

/// Writes a non-negative integer.
pub fn num(value: &Value, _: Kwargs, _: &State) -> TeraResult<String> {
    match value.as_i128() {
        Some(number) if number >= 0 => Ok(number.to_string()),
        _ => Err(Error::message(format!("{value} is not a non-negative integer"))),
    }
}

/// Names of the output filters, for the template lint test.
pub const OUTPUT_FILTERS: &[&str] = &["nginx", "nginx_str", "nft", "iptables", "systemd", "yaml", "xml", "powershell", "num"];
