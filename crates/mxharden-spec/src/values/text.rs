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
    if !(10..=500).contains(&length) {
        return Err(format!(
            "a reason of {length} characters is not enough to audit; write 10 to 500 characters saying why and who decided"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("the reason must be one line without control characters".to_owned());
    }
    Ok(())
}
