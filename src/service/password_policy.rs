//! The password policy (docs/wire-contract.md §3.9): a length in characters, and nothing
//! else. No rule on character classes: it would refuse long passphrases and, as NIST SP
//! 800-63B says, makes passwords no harder to guess. Applied wherever a password is set:
//! the password change and restore, the admin verbs, and the import.

use crate::{config::Config, error::Violation};

/// The length a new password must have, in characters (Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl PasswordPolicy {
    /// Spryker's Glue rule for new passwords (12 to 128 characters) without its character
    /// classes.
    pub const DEFAULT: Self = Self { min_chars: 12, max_chars: 128 };

    /// No rule at all: only for the built-in demo dataset, whose personas keep Spryker's
    /// demo password `change123` (Spryker's demo shops allow-list it too).
    pub const DEMO_DATASET: Self = Self { min_chars: 0, max_chars: usize::MAX };

    pub fn of(config: &Config) -> Self {
        Self {
            min_chars: usize::try_from(config.password_min_length).unwrap_or(usize::MAX),
            max_chars: usize::try_from(config.password_max_length).unwrap_or(usize::MAX),
        }
    }

    /// Why `password` may not be set as the attribute `attribute`, in Glue's words
    /// (Symfony's length messages), or `None`.
    pub fn violation(&self, attribute: &'static str, password: &str) -> Option<Violation> {
        let chars = password.chars().count();
        if chars < self.min_chars {
            Some(self.too_short(attribute))
        } else if chars > self.max_chars {
            Some(self.too_long(attribute))
        } else {
            None
        }
    }

    pub fn too_short(&self, attribute: &'static str) -> Violation {
        let message = format!(
            "This value is too short. It should have {} characters or more.",
            self.min_chars
        );
        Violation::owned(attribute, message)
    }

    pub fn too_long(&self, attribute: &'static str) -> Violation {
        let message = format!(
            "This value is too long. It should have {} characters or less.",
            self.max_chars
        );
        Violation::owned(attribute, message)
    }

    /// The same for the admin verbs and the import: a sentence, or `Ok`.
    pub fn check(&self, password: &str) -> Result<(), String> {
        match self.violation("password", password) {
            Some(v) => Err(format!("the password is not allowed: {}", v.message)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_length_counts_in_characters() {
        let policy = PasswordPolicy::DEFAULT;
        assert_eq!(policy.violation("newPassword", "correct horse battery staple"), None);
        // Twelve characters of which none is ASCII: 36 bytes, still twelve characters.
        assert_eq!(policy.violation("newPassword", "ĉĉĉĉĉĉĉĉĉĉĉĉ"), None);
        let short = policy.violation("newPassword", "change123").unwrap();
        assert_eq!(short.message, "This value is too short. It should have 12 characters or more.");
        let long = policy.violation("password", &"x".repeat(129)).unwrap();
        assert_eq!(long.message, "This value is too long. It should have 128 characters or less.");
        assert_eq!(policy.violation("password", &"x".repeat(128)), None);
        assert!(policy.check("short").unwrap_err().contains("12 characters or more"));
    }
}
