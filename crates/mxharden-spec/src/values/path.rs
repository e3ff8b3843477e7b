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
    fn abs_path_parent_and_within() {
        let path: AbsPath = "/srv/mendix/sales".parse().unwrap();
        assert_eq!(path.parent().unwrap().as_str(), "/srv/mendix");
        assert!(path.is_within(&"/srv/mendix".parse().unwrap()));
        assert!(!path.is_within(&"/srv/mend".parse().unwrap()));
        assert!("/srv".parse::<AbsPath>().unwrap().parent().is_none());
    }
}
