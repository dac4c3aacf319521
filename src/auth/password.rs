//! Passwords: Argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings.
//! Hashing costs ~20 ms of CPU: async callers go through `spawn_blocking`.

use std::{fmt, sync::LazyLock};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier},
};

/// A password in memory. `Debug` does not print it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a password with a fresh random salt.
pub fn hash(password: &Password) -> Result<String, argon2::password_hash::Error> {
    Ok(hasher().hash_password(password.expose().as_bytes())?.to_string())
}

/// A hash of nothing anyone knows, checked when the e-mail is unknown so that unknown and
/// known e-mails cost the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash(&Password::new("glue-auth dummy password, never valid")).unwrap_or_default()
});

/// Checks `password` against a stored PHC string; with `None` it spends the same time on a
/// dummy hash and fails.
pub fn verify(password: &Password, stored: Option<&str>) -> bool {
    let (phc, known) = match stored {
        Some(phc) => (phc, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    hasher().verify_password(password.expose().as_bytes(), phc).is_ok() && known
}
