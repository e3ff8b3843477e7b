use super::macros::checked_string;

checked_string!(
    /// An absolute, normalized path: no `.` or `..` component, no repeated or
    /// trailing `/`, and only characters that need no quoting in nginx, XML,
    /// YAML, systemd units or nft files.
    AbsPath,
    check_abs_path,
    "^(/[A-Za-z0-9._+@-]+)+$",
    "Absolute path without '.', '..', repeated or trailing '/'; letters, digits and . _ + @ - only."
);

/// Longest accepted path, in bytes (Linux `PATH_MAX` less the terminating NUL).
const PATH_MAX: usize = 4095;

/// Longest accepted component, in bytes (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

checked_string!(
    /// A URL path prefix of an access rule: `/`, or `/` followed by segments
    /// of letters, digits and `. _ ~ -`, with an optional trailing `/`. No
    /// `.` or `..` segment, no empty segment and no percent-encoding, because
    /// nginx compares a prefix with the decoded, normalized request path.
    PathPrefix,
    check_path_prefix,
    "^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*/?)?$",
    "URL path prefix such as /rest/ or /odata/partner; letters, digits and . _ ~ - between slashes."
);

/// Longest accepted path prefix, in bytes.
const PATH_PREFIX_MAX: usize = 1024;

fn check_path_prefix(value: &str) -> Result<(), String> {
    let Some(relative) = value.strip_prefix('/') else {
        return Err(format!("invalid path prefix {value:?}: expected a URL path starting with '/', such as /rest/"));
    };
    if value.len() > PATH_PREFIX_MAX {
        return Err(format!("invalid path prefix: longer than {PATH_PREFIX_MAX} bytes"));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || "/._~-".contains(*c))) {
        return Err(format!(
            "invalid path prefix {value:?}: character {bad:?} is not allowed; use letters, digits and . _ ~ - between slashes (no regular expression, no percent-encoding)"
        ));
    }
    if value == "/" {
        return Ok(());
    }
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    for segment in relative.split('/') {
        match segment {
            "" => return Err(format!("invalid path prefix {value:?}: remove the repeated '/'")),
            "." | ".." => {
                return Err(format!("invalid path prefix {value:?}: '.' and '..' segments are not allowed; write the normalized path"));
            }
            _ => {}
        }
    }
    Ok(())
}

impl PathPrefix {
    /// Returns the prefix without its trailing `/`, or `/` for the whole site.
    pub fn base(&self) -> &str {
        if self.0 == "/" { "/" } else { self.0.strip_suffix('/').unwrap_or(&self.0) }
    }

    /// Returns the first segment, or `""` for `/`.
    pub fn first_segment(&self) -> &str {
        self.base()[1..].split('/').next().unwrap_or_default()
    }

    /// Tells whether the prefix covers the whole site.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }
}

fn check_abs_path(value: &str) -> Result<(), String> {
    let Some(relative) = value.strip_prefix('/') else {
        return Err(format!("invalid path {value:?}: expected an absolute path starting with '/'"));
    };
    if value.len() > PATH_MAX {
        return Err(format!("invalid path: longer than {PATH_MAX} bytes"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._+@-".contains(*c)))
    {
        return Err(format!(
            "invalid path {value:?}: character {bad:?} is not allowed; use letters, digits and . _ + @ - only"
        ));
    }
    for component in relative.split('/') {
        match component {
            "" => {
                return Err(format!(
                    "invalid path {value:?}: remove the repeated or trailing '/'"
                ));
            }
            "." | ".." => {
                return Err(format!(
                    "invalid path {value:?}: '.' and '..' components are not allowed; write the normalized path"
                ));
            }
            _ if component.len() > NAME_MAX => {
                return Err(format!(
                    "invalid path: a component has {} bytes; Linux allows at most {NAME_MAX}",
                    component.len()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl AbsPath {
    /// Returns the path without its leading `/`, for use beneath another root.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// Iterates over the path's components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.relative().split('/')
    }

    /// Returns this path with `name` appended; `name` must be one checked component.
    pub fn join(&self, name: &str) -> AbsPath {
        let joined = format!("{}/{}", self.0, name);
        AbsPath::try_from(joined).expect("joining a checked path and a checked component")
    }

    /// Returns the parent folder, or `None` for a top-level entry such as `/srv`.
    pub fn parent(&self) -> Option<AbsPath> {
        let cut = self.0.rfind('/')?;
        (cut > 0).then(|| AbsPath(self.0[..cut].to_owned()))
    }

    /// Returns the last component.
    pub fn file_name(&self) -> &str {
        self.components().last().unwrap_or_default()
    }

    /// Tells whether `self` equals `other` or lies beneath it.
    pub fn is_within(&self, other: &AbsPath) -> bool {
        self.0 == other.0 || self.0.starts_with(&format!("{}/", other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_path_accepts_normal_paths() {
        for path in ["/srv", "/srv/mendix/sales", "/etc/ssl/private/sales.key", "/a/b-c_d+e@f"] {
            assert!(check_abs_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn abs_path_rejects_unsafe_forms() {
        for path in [
            "", "/", "srv", "/srv/", "/srv//x", "/srv/../etc", "/srv/./x", "/srv/a b", "/srv/a;b",
            "/srv/a{b", "/srv/a\nb", "/srv/a\"b", "/srv/a'b", "/srv/$x", "/srv/a#b", "/srv/a\\b",
        ] {
            assert!(check_abs_path(path).is_err(), "{path:?}");
        }
    }

    #[test]
    fn abs_path_limits_component_length() {
        assert!(check_abs_path(&format!("/srv/{}", "a".repeat(255))).is_ok());
        assert!(check_abs_path(&format!("/srv/{}", "a".repeat(256))).is_err());
    }

    #[test]
    fn path_prefix_forms() {
        for prefix in ["/", "/rest", "/rest/", "/rest/orders/v1", "/odata-doc/", "/a.b_c~d-e/"] {
            assert!(check_path_prefix(prefix).is_ok(), "{prefix}");
        }
        for prefix in [
            "", "rest/", "//", "/rest//", "//rest", "/rest/../admin", "/./rest", "/rest/..", "/re st", "/rest*",
            "/~^/rest", "/rest;", "/rest{", "/%72est", "/rest?x", "/rest$", "/rest\n", "/r\u{e9}st",
        ] {
            assert!(check_path_prefix(prefix).is_err(), "{prefix:?}");
        }
    }

    #[test]
    fn path_prefix_base_and_segment() {
        let rest: PathPrefix = "/rest/".parse().unwrap();
        assert_eq!(rest.base(), "/rest");
        assert_eq!(rest.first_segment(), "rest");
        let nested: PathPrefix = "/odata/partner".parse().unwrap();
        assert_eq!(nested.base(), "/odata/partner");
        assert_eq!(nested.first_segment(), "odata");
        let root: PathPrefix = "/".parse().unwrap();
        assert_eq!(root.base(), "/");
        assert!(root.is_root());
        assert_eq!(root.first_segment(), "");
    }

    #[test]
    fn abs_path_parent_and_within() {
        let path: AbsPath = "/srv/mendix/sales".parse().unwrap();
        assert_eq!(path.parent().unwrap().as_str(), "/srv/mendix");
        assert!(path.is_within(&"/srv/mendix".parse().unwrap()));
        assert!(!path.is_within(&"/srv/mend".parse().unwrap()));
        assert!("/srv".parse::<AbsPath>().unwrap().parent().is_none());
    }
}
