//! Passwords: Argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings.
//! Hashing costs ~20 ms of CPU: async callers go through `spawn_blocking`.

use std::{
    fmt,
    sync::{LazyLock, Mutex, PoisonError},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHasher, phc::PasswordHash},
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

/// Argon2 working memory (19 MiB at the default parameters), kept between checks: a fresh
/// allocation per login made glibc keep one such block per thread that ever ran a check
/// (531 MiB peak RSS in the benchmark). Checks run at most one per CPU at once, so the pool
/// holds that many.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Checks `password` against a stored PHC string; with `None` it spends the same time on a
/// dummy hash and fails.
pub fn verify(password: &Password, stored: Option<&str>) -> bool {
    let (phc, known) = match stored {
        Some(phc) => (phc, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let mut memory =
        MEMORY.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
    let matches = verify_in(&mut memory, password.expose().as_bytes(), phc).unwrap_or(false);
    MEMORY.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
    matches && known
}

/// Recomputes the hash of `phc`'s parameters and salt in `memory` (grown if it is too small)
/// and compares in constant time. `None` for a PHC string that is not Argon2 or is malformed.
fn verify_in(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = parsed.version.map_or(Ok(Version::default()), Version::try_from).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    let salt = parsed.salt.as_ref()?;
    let expected = parsed.hash.as_ref()?.as_bytes();
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory.as_mut_slice())
        .ok()?;
    Some(aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash(&Password::new("correct horse")).unwrap();
        assert!(verify(&Password::new("correct horse"), Some(&phc)));
        assert!(!verify(&Password::new("correct horsE"), Some(&phc)));
        assert!(!verify(&Password::new(""), Some(&phc)));
        // Unknown e-mail: the dummy hash is checked and the answer is always no.
        assert!(!verify(&Password::new("glue-auth dummy password, never valid"), None));
    }

    #[test]
    fn other_parameters_and_malformed_strings_are_handled() {
        // Smaller memory than the pooled blocks, and argon2i: both still verify.
        let small =
            Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, None).unwrap())
                .hash_password(b"pw")
                .unwrap()
                .to_string();
        assert!(verify(&Password::new("pw"), Some(&small)));
        assert!(!verify(&Password::new("px"), Some(&small)));
        // Larger memory than the pool holds: the block grows.
        let large = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(verify(&Password::new("pw"), Some(&large)));
        for bad in ["", "$argon2id$", "$pbkdf2$i=1$c2FsdA$aGFzaA", "not a phc string"] {
            assert!(!verify(&Password::new("pw"), Some(bad)), "{bad}");
        }
    }
}
