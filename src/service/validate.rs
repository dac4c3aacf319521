//! Attribute rules shared by the operations and the import.

use uuid::Uuid;

/// The case-insensitive form of an e-mail: the login key.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A uuid in its canonical, hyphenated form; anything else is no id of ours.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    (text.len() == 36).then(|| Uuid::parse_str(text).ok()).flatten()
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
/// (Deliverability is the mail server's business; this catches what is plainly not an address.)
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn e_mails_are_told_from_other_text() {
        for ok in ["sonia@acme.com", "Trever.m@acme.com", "a.b+c@sub.example.org"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "sonia",
            "@acme.com",
            "sonia@",
            "sonia@acme",
            "so nia@acme.com",
            "a@b@c.de",
            "a@.de",
            "a@de.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
