use super::macros::checked_string;

/// Response headers that `app.proxy.headers` may set. mxharden sets
/// `Strict-Transport-Security`, `X-Content-Type-Options`, `X-Frame-Options`,
/// `Referrer-Policy` and `Content-Security-Policy` from fields of their own,
/// and headers that change routing, caching or cookies are left out so that
/// a header cannot undo the hardening.
pub const ALLOWED_HEADER_NAMES: &[&str] = &[
    "Content-Security-Policy-Report-Only",
    "Cross-Origin-Embedder-Policy",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "NEL",
    "Permissions-Policy",
    "Report-To",
    "Reporting-Endpoints",
    "X-Permitted-Cross-Domain-Policies",
];

/// Maximum header value length, in bytes. Real policies are far shorter,
/// so a longer value is taken for a mistake.
const HEADER_VALUE_MAX: usize = 4096;

checked_string!(
    /// A response header name from [`ALLOWED_HEADER_NAMES`], spelled as there.
    HeaderName,
    check_header_name,
    "^(Content-Security-Policy-Report-Only|Cross-Origin-Embedder-Policy|Cross-Origin-Opener-Policy|Cross-Origin-Resource-Policy|NEL|Permissions-Policy|Report-To|Reporting-Endpoints|X-Permitted-Cross-Domain-Policies)$",
    "Response header name from mxharden's allow-list."
);

checked_string!(
    /// A response header value: 1 to 4096 printable ASCII characters without
    /// `"`, `\\` or `$`, so it can be written into a quoted nginx string (where
    /// `$` would start a variable) and an XML attribute.
    HeaderValue,
    check_header_value,
    "^[ !#%-\\[\\]-~]{1,4096}$",
    "Header value: printable ASCII without double quote, backslash or dollar sign."
);

fn check_header_name(value: &str) -> Result<(), String> {
    if ALLOWED_HEADER_NAMES.contains(&value) {
        return Ok(());
    }
    let hint = match ALLOWED_HEADER_NAMES.iter().find(|name| name.eq_ignore_ascii_case(value)) {
        Some(name) => format!("write it as {name}"),
        None => format!("allowed names: {}", ALLOWED_HEADER_NAMES.join(", ")),
    };
    Err(format!("header {value:?} is not allowed; {hint}"))
}

fn check_header_value(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > HEADER_VALUE_MAX {
        return Err(format!("invalid header value: expected 1 to {HEADER_VALUE_MAX} characters"));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(format!("invalid header value {value:?}: remove the leading or trailing space"));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ') || "\"\\$".contains(*c)) {
        return Err(format!(
            "invalid header value {value:?}: character {bad:?} is not allowed; use printable ASCII without \", \\ and $"
        ));
    }
    Ok(())
}

/// A request body limit in MiB, from 1 to 10240.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct UploadMegabytes(u32);

impl UploadMegabytes {
    /// The default upload limit on `/file`: 1 GiB.
    pub const DEFAULT: UploadMegabytes = UploadMegabytes(1024);

    /// Returns the limit in MiB.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for UploadMegabytes {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, String> {
        if !(1..=10240).contains(&value) {
            return Err(format!("invalid upload limit {value} MiB: choose 1 to 10240"));
        }
        Ok(UploadMegabytes(value))
    }
}

impl From<UploadMegabytes> for u32 {
    fn from(value: UploadMegabytes) -> u32 {
        value.0
    }
}

impl schemars::JsonSchema for UploadMegabytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UploadMegabytes".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 1,
            "maximum": 10240,
            "description": "Request body limit in MiB, 1 to 10240."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_name_allow_list() {
        assert!(check_header_name("Permissions-Policy").is_ok());
        for name in ["permissions-policy", "Set-Cookie", "Location", "Strict-Transport-Security", "X-A\nB", ""] {
            assert!(check_header_name(name).is_err(), "{name:?}");
        }
        assert!(check_header_name("permissions-policy").unwrap_err().contains("write it as Permissions-Policy"));
    }

    #[test]
    fn header_value_rejects_nginx_delimiters() {
        assert!(check_header_value("default-src 'self'; img-src 'self' data:").is_ok());
        assert!(check_header_value("camera=(), geolocation=(self \"https://a.example\")").is_err());
        for value in ["", " x", "x ", "a\"b", "a\\b", "a$host", "a\nb", "a\tb", "a\u{e9}", &"x".repeat(4097)] {
            assert!(check_header_value(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn upload_limit_range() {
        assert!(UploadMegabytes::try_from(0).is_err());
        assert!(UploadMegabytes::try_from(10241).is_err());
        assert_eq!(UploadMegabytes::try_from(50).unwrap().get(), 50);
    }
}
