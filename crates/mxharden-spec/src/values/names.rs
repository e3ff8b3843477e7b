use super::macros::checked_string;

/// Longest app name. `mx-` plus the name must fit the 32-character limit of
/// `useradd`, and `mendix-<name>.service` must stay short enough to read.
pub const APP_NAME_MAX: usize = 24;

checked_string!(
    /// App name: lowercase letters and digits in hyphen-separated groups,
    /// starting with a letter. Every tool downstream (useradd, systemd, nginx,
    /// nft after `-` becomes `_`) accepts it.
    AppName,
    check_app_name,
    "^[a-z][a-z0-9]*(-[a-z0-9]+)*$",
    "App name: lowercase letters, digits and single hyphens, starting with a letter, at most 24 characters."
);

checked_string!(
    /// Name of a system account or group.
    AccountName,
    check_account_name,
    "^[a-z_][a-z0-9_-]{0,31}$",
    "System account name: lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters; never root."
);

checked_string!(
    /// A fully qualified DNS host name in lowercase, without a trailing dot.
    DnsName,
    check_dns_name,
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$",
    "Host name in lowercase, at least two labels, e.g. sales.example.com."
);

fn check_app_name(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > APP_NAME_MAX {
        return Err(format!(
            "invalid app name {value:?}: expected 1 to {APP_NAME_MAX} characters"
        ));
    }
    let starts_with_letter = value.starts_with(|c: char| c.is_ascii_lowercase());
    let chars_allowed = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let hyphens_inside = !value.ends_with('-') && !value.contains("--");
    if !(starts_with_letter && chars_allowed && hyphens_inside) {
        return Err(format!(
            "invalid app name {value:?}: use lowercase letters, digits and single hyphens, starting with a letter (e.g. \"sales-eu\")"
        ));
    }
    Ok(())
}

/// Accounts that must never run an app, whatever the desired state names.
const RESERVED_ACCOUNTS: &[&str] = &[
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "nobody", "nogroup", "systemd-network",
    "systemd-resolve", "messagebus", "sshd", "nginx", "postgres",
    // Groups that grant privileges: an account of the same name would join them.
    "sudo", "wheel", "adm", "shadow", "disk", "docker", "lxd", "kvm", "staff", "users",
    "systemd-journal", "tty", "utmp", "crontab", "ssl-cert", "input", "video", "audio",
];

fn check_account_name(value: &str) -> Result<(), String> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || value.len() > 32 {
        return Err(format!(
            "invalid account name {value:?}: use 1 to 32 lowercase letters, digits, '_' or '-', starting with a letter or '_'"
        ));
    }
    if RESERVED_ACCOUNTS.contains(&value) {
        return Err(format!(
            "account name {value:?} is a system account shared with other services; choose a dedicated name such as \"mx-<app>\""
        ));
    }
    Ok(())
}

fn check_dns_name(value: &str) -> Result<(), String> {
    let invalid = || {
        format!(
            "invalid host name {value:?}: expected a lowercase name with at least two labels of letters, digits and inner hyphens, the last not all digits, e.g. \"sales.example.com\""
        )
    };
    if value.is_empty() || value.len() > 253 {
        return Err(invalid());
    }
    let labels: Vec<&str> = value.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid());
    }
    // A top-level label of digits only would make 10.0.0.1 a host name
    // (RFC 3696, section 2), and no such top-level domain exists.
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(invalid());
    }
    for label in labels {
        let chars_ok = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let length_ok = (1..=63).contains(&label.len());
        let edges_ok = !label.starts_with('-') && !label.ends_with('-');
        if !(chars_ok && length_ok && edges_ok) {
            return Err(invalid());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_name_accepts_hyphen_groups() {
        for name in ["sales", "sales-eu", "a1", "crm-2-test"] {
            assert!(check_app_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn app_name_rejects_delimiters() {
        for name in ["", "Sales", "1sales", "sales-", "sa--les", "sa_les", "sa les", "a;b", "a\nb", "a{b"] {
            assert!(check_app_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn account_name_rejects_root() {
        assert!(check_account_name("root").is_err());
        assert!(check_account_name("www-data").is_err());
        assert!(check_account_name("mx-sales").is_ok());
    }

    #[test]
    fn dns_name_needs_two_lowercase_labels() {
        assert!(check_dns_name("sales.example.com").is_ok());
        for name in ["localhost", "Sales.example.com", "-a.example.com", "a..b", "a.b.", "a b.c", "a;b.c", "10.0.0.1", "sales.123"] {
            assert!(check_dns_name(name).is_err(), "{name:?}");
        }
    }
}
