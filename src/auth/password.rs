//! Passwords: Argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings.
//! Hashing costs ~20 ms of CPU: login checks run on a [`Checker`]'s threads, other async
//! callers go through `spawn_blocking`.

use std::{
    fmt,
    sync::{Arc, LazyLock, Mutex, PoisonError, mpsc},
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
/// (531 MiB peak RSS in the benchmark). The service runs at most one check per CPU at once
/// (a [`Checker`]), so the pool holds that many.
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

/// Password checks on threads of their own, one per CPU, in the order they were asked for.
///
/// Each thread takes the next check from the queue as soon as it finishes one, so Argon2
/// keeps every CPU busy under a load of logins: with a semaphore and `spawn_blocking`, each
/// check waited for the slot's release to wake the next request's task, and that task to
/// wake a blocking thread. Measured with the load benchmark (SQLite, two alternating rounds
/// at 32 and 256 connections): 97-102 logins/s with the service at 182-192% CPU before,
/// 105-109/s at 196-197% after. A check whose caller has gone (the client disconnected while
/// it waited) is skipped. The threads end when the `Checker` is dropped.
pub struct Checker {
    queue: mpsc::Sender<Check>,
    /// Checks skipped because their caller had gone (for the tests).
    #[cfg(test)]
    skipped: Arc<std::sync::atomic::AtomicUsize>,
}

struct Check {
    password: Password,
    stored: Option<String>,
    answer: tokio::sync::oneshot::Sender<bool>,
}

impl Checker {
    /// Starts `threads` checking threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (queue, checks) = mpsc::channel::<Check>();
        let checks = Arc::new(Mutex::new(checks));
        #[cfg(test)]
        let skipped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for n in 0..threads.max(1) {
            let checks = Arc::clone(&checks);
            #[cfg(test)]
            let skipped = Arc::clone(&skipped);
            std::thread::Builder::new().name(format!("password-check-{n}")).spawn(move || {
                loop {
                    // The lock is held while waiting: the other threads queue behind it.
                    let next = checks.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(check) = next else { return };
                    if check.answer.is_closed() {
                        #[cfg(test)]
                        skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    // A check that panicked fails its caller only (its answer is dropped);
                    // the thread goes on with the next one.
                    let checked = std::panic::catch_unwind(|| {
                        verify(&check.password, check.stored.as_deref())
                    });
                    match checked {
                        // The caller may have gone meanwhile: then nobody needs the answer.
                        Ok(matches) => drop(check.answer.send(matches)),
                        Err(_) => tracing::error!("a password check panicked"),
                    }
                }
            })?;
        }
        Ok(Self {
            queue,
            #[cfg(test)]
            skipped,
        })
    }

    /// [`verify`] on one of the checking threads; `None` if they are gone (they end only
    /// with the `Checker`, or by a panic).
    pub async fn check(&self, password: Password, stored: Option<String>) -> Option<bool> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue.send(Check { password, stored, answer }).ok()?;
        answered.await.ok()
    }
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
    use std::time::Duration;

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

    #[tokio::test]
    async fn a_checker_answers_each_caller_and_skips_the_ones_that_left() {
        let checker = Checker::start(1).unwrap();
        let phc = hash(&Password::new("pw")).unwrap();
        // A slow check (t = 40) keeps the one thread busy while three callers queue and leave.
        let slow = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 40, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        let (first, ()) = tokio::join!(checker.check(Password::new("pw"), Some(slow)), async {
            // Whichever `join!` polls first, the slow check is queued before these.
            tokio::task::yield_now().await;
            for _ in 0..3 {
                let gone = checker.check(Password::new("pw"), Some(phc.clone()));
                // Polled once (queued), then dropped: its caller has left.
                assert!(tokio::time::timeout(Duration::ZERO, gone).await.is_err());
            }
        });
        assert_eq!(first, Some(true));
        let (right, wrong, unknown) = tokio::join!(
            checker.check(Password::new("pw"), Some(phc.clone())),
            checker.check(Password::new("px"), Some(phc)),
            checker.check(Password::new("pw"), None),
        );
        assert_eq!((right, wrong, unknown), (Some(true), Some(false), Some(false)));
        assert_eq!(checker.skipped.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
}
