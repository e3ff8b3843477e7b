use super::macros::checked_string;
use super::names::DnsName;

/// A TCP port that an unprivileged runtime can bind: 1024 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Port(u16);

impl Port {
    /// Returns the port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for Port {
    type Error = String;
    fn try_from(value: u16) -> Result<Self, String> {
        if value < 1024 {
            return Err(format!(
                "invalid port {value}: the runtime runs as an unprivileged user and cannot bind ports below 1024; choose 1024 to 65535"
            ));
        }
        Ok(Port(value))
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl schemars::JsonSchema for Port {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Port".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 1024,
            "maximum": 65535,
            "description": "TCP port from 1024 to 65535."
        })
    }
}

checked_string!(
    /// An `https://` URL with a host name, an optional port and an optional
    /// path; no user info, query or fragment.
    HttpsUrl,
    check_https_url,
    "^https://[a-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$",
    "https:// URL: host name, optional :port and optional path, e.g. https://sales.example.com"
);

fn check_https_url(value: &str) -> Result<(), String> {
    let invalid = |why: &str| format!("invalid URL {value:?}: {why}");
    let Some(rest) = value.strip_prefix("https://") else {
        return Err(invalid(
            "the root URL must start with https:// so that the runtime marks its session cookie Secure",
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(cut) => rest.split_at(cut),
        None => (rest, ""),
    };
    let host = match authority.split_once(':') {
        Some((host, port)) => {
            let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
            if !port_ok {
                return Err(invalid("the port must be a number from 1 to 65535"));
            }
            host
        }
        None => authority,
    };
    host.parse::<DnsName>().map_err(|e| invalid(&e))?;
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~/-".contains(c));
    if !path_ok {
        return Err(invalid("the path may hold letters, digits and . _ ~ / - only"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_rejects_privileged() {
        assert!(Port::try_from(80).is_err());
        assert!(Port::try_from(0).is_err());
        assert_eq!(Port::try_from(8000).unwrap().get(), 8000);
    }

    #[test]
    fn https_url_forms() {
        for url in ["https://sales.example.com", "https://sales.example.com:8443/app/", "https://a.b"] {
            assert!(check_https_url(url).is_ok(), "{url}");
        }
        for url in [
            "http://sales.example.com", "https://", "https://x", "https://a.b:0", "https://a.b:99999",
            "https://a.b/?q=1", "https://u@a.b", "https://a.b/\n", "https://a.b/;x",
        ] {
            assert!(check_https_url(url).is_err(), "{url:?}");
        }
    }
}
