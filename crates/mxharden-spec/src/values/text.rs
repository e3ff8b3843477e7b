use super::macros::checked_string;

checked_string!(
    /// A one-line human explanation, such as why a check is waived.
    Reason,
    check_reason,
    "^[^\\u0000-\\u001f\\u007f]{10,500}$",
    "One line of 10 to 500 printable characters explaining the decision."
);

fn check_reason(value: &str) -> Result<(), String> {
    let length = value.chars().count();
    if length < 10 {
        return Err(format!(
            "a reason of {length} characters is not enough to audit; write 10 to 500 characters saying why and who decided"
        ));
    }
    if length > 500 {
        return Err(format!(
            "the reason has {length} characters; shorten it to at most 500 and link to the full decision"
        ));
    }
    // A reason of digits and punctuation only (e.g. a date that YAML 1.1
    // tools read as a timestamp) says neither why nor who.
    if !value.chars().any(char::is_alphabetic) {
        return Err(format!("the reason {value:?} has no words; say why the check is waived and who decided"));
    }
    if value.chars().any(char::is_control) {
        return Err("the reason must be one line without control characters".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_length_bounds() {
        assert!(check_reason("Upgrade planned, CAB-1234").is_ok());
        assert!(check_reason("too short").is_err());
        let long = "x".repeat(501);
        let message = check_reason(&long).unwrap_err();
        assert!(message.contains("at most 500"), "{message}");
    }

    #[test]
    fn reason_needs_words() {
        assert!(check_reason("2030-03-31").is_err());
        assert!(check_reason("1234567890 --").is_err());
    }

    #[test]
    fn reason_rejects_control_characters() {
        assert!(check_reason("Upgrade planned\nfor March").is_err());
        assert!(check_reason("Upgrade \u{1b}[31m planned").is_err());
    }
}
