//! Passwords: Argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings;
//! Spryker's bcrypt hashes are verified as Symfony makes them, until a login replaces them.
//! Hashing costs ~20 ms of CPU: login checks run on a [`Checker`]'s threads, other async
//! callers go through `spawn_blocking`.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Condvar, LazyLock, Mutex, PoisonError},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHasher, phc::PasswordHash},
};

use crate::client_address::ClientKey;

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

/// Whether `stored` is a bcrypt hash (`$2a$`, `$2b$`, `$2y$`: Spryker's, from Symfony's
/// `NativePasswordHasher`) rather than an Argon2 PHC string.
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| stored.starts_with(prefix))
}

/// The cost of a bcrypt hash, or `None` if it is not one.
pub fn bcrypt_cost(stored: &str) -> Option<u32> {
    if !is_bcrypt(stored) {
        return None;
    }
    stored.parse::<bcrypt::HashParts>().ok().map(|parts| parts.get_cost())
}

/// What Symfony's `NativePasswordHasher` hands bcrypt: the password itself, or for one
/// longer than 72 bytes or holding a NUL (which bcrypt would cut), base64(sha512) of it.
fn bcrypt_input(password: &str) -> Vec<u8> {
    use base64::Engine as _;
    if password.len() > 72 || password.contains('\0') {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, password.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref()).into_bytes()
    } else {
        password.as_bytes().to_vec()
    }
}

/// A bcrypt of nothing anyone knows at `cost`: the time a bcrypt check takes.
fn bcrypt_dummy(cost: u32) {
    let _ = bcrypt::hash_with_salt(b"glue-auth dummy password", cost.clamp(4, 31), [7; 16]);
}

/// Checks `password` against a stored hash (Argon2 PHC string or Spryker's bcrypt); with
/// `None` it spends the same time on a dummy hash and fails.
pub fn verify(password: &Password, stored: Option<&str>) -> bool {
    check(password, stored, 0)
}

/// [`verify`], spending the same time whatever `stored` is, as long as the customers may
/// still have bcrypt hashes of cost `legacy_cost` or less (0: none): a bcrypt check also
/// spends an Argon2 one, and any other check a bcrypt one of `legacy_cost`. So the time of a
/// login tells nobody whether an e-mail is known, nor whether its hash is still bcrypt
/// (docs/security.md).
pub fn check(password: &Password, stored: Option<&str>, legacy_cost: u32) -> bool {
    if let Some(phc) = stored.filter(|phc| is_bcrypt(phc)) {
        if legacy_cost > 0 {
            argon2_check(password, None);
        }
        let input = bcrypt_input(password.expose());
        return !password.expose().is_empty() && bcrypt::verify(input, phc).unwrap_or(false);
    }
    let matches = argon2_check(password, stored);
    if legacy_cost > 0 {
        bcrypt_dummy(legacy_cost);
    }
    matches
}

/// Checks `password` against an Argon2 PHC string, or the dummy hash for `None`.
fn argon2_check(password: &Password, stored: Option<&str>) -> bool {
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

/// Password checks on threads of their own, one per CPU, shared fairly between clients.
///
/// Each thread takes the next check as soon as it finishes one, so Argon2 keeps every CPU
/// busy under a load of logins (with a semaphore and `spawn_blocking`, each check waited
/// for wake-ups: 97-102 logins/s at 182-192% CPU before, 105-109/s at 196-197% after; see
/// `docs/security.md`). The next check is taken from the clients in turn, one check each
/// (round robin), so a client with many checks waiting delays another client's login by at
/// most one check per client that is waiting: one source cannot starve the others. And a
/// client that had none waiting is served first (as fq_codel serves new flows): a user
/// logging in once waits for the checks running, not for a round of every flooding client.
///
/// The queue is bounded: a client holds at most [`QueueLimits::per_client`] places (admitted
/// logins not yet checked), and all together at most [`QueueLimits::total`]. When the whole
/// queue is full, a newcomer takes the place of the newest check of the client holding the
/// most places, if that client holds more than the newcomer; otherwise it is refused. A
/// refusal is immediate ([`Refused`]). A check whose caller has gone (the client
/// disconnected while it waited) is skipped. The threads end when the `Checker` is dropped.
pub struct Checker {
    shared: Arc<Shared>,
}

/// How many checks may wait.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Places one client may hold.
    pub per_client: usize,
    /// Places all clients together may hold.
    pub total: usize,
}

/// Why a check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client holds all the places it may.
    ClientBusy,
    /// The queue is full, or the check gave its place to another client's.
    Full,
    /// The checking threads are gone.
    Stopped,
}

/// Whom a check is for: the key its client counts under (none for a caller without an
/// address).
pub type Client = Option<ClientKey>;

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    limits: QueueLimits,
    /// The highest bcrypt cost the customers' hashes may have (0: none): see [`check`].
    legacy_cost: std::sync::atomic::AtomicU32,
    /// Checks skipped because their caller had gone (for the tests).
    #[cfg(test)]
    skipped: std::sync::atomic::AtomicUsize,
}

/// Fresh clients served in a row at most, before one of the others.
const FRESH_STREAK: usize = 4;

#[derive(Default)]
struct Queues {
    clients: HashMap<Client, Waiting>,
    /// Clients whose checks began to wait when none of theirs did: served before `turns`.
    fresh: VecDeque<Client>,
    /// The other clients with checks waiting, in the order of their turns.
    turns: VecDeque<Client>,
    /// Fresh clients served since the last turn of `turns`.
    fresh_streak: usize,
    /// Places held, by all clients.
    held: usize,
    closed: bool,
}

#[derive(Default)]
struct Waiting {
    /// Places held: admitted, not yet taken by a thread (or refused).
    held: usize,
    checks: VecDeque<Check>,
    /// Places taken from tickets not yet queued: that many of the client's tickets are
    /// refused when they come to queue (their places are already given back).
    revoked: usize,
}

struct Check {
    password: Password,
    stored: Option<String>,
    answer: tokio::sync::oneshot::Sender<Result<bool, Refused>>,
}

impl Queues {
    /// Gives up one place of `client`, forgetting the client once it holds none.
    fn release(&mut self, client: Client) {
        self.held = self.held.saturating_sub(1);
        if let Some(waiting) = self.clients.get_mut(&client) {
            waiting.held = waiting.held.saturating_sub(1);
            if waiting.held == 0 && waiting.checks.is_empty() && waiting.revoked == 0 {
                self.clients.remove(&client);
            }
        }
    }

    /// The next check, in turn: the first of the client whose turn it is, a fresh client's
    /// before the others'.
    fn next(&mut self) -> Option<Check> {
        // Fresh clients first, but the others still get every few turns: a stream of new
        // clients cannot starve the ones waiting longest.
        let take_fresh =
            !self.fresh.is_empty() && (self.fresh_streak < FRESH_STREAK || self.turns.is_empty());
        let client = if take_fresh {
            self.fresh_streak += 1;
            self.fresh.pop_front()?
        } else {
            self.fresh_streak = 0;
            self.turns.pop_front()?
        };
        let waiting = self.clients.get_mut(&client)?;
        let check = waiting.checks.pop_front()?;
        if !waiting.checks.is_empty() {
            self.turns.push_back(client);
        }
        self.release(client);
        Some(check)
    }

    /// Makes room for a newcomer holding `newcomer_holds` places: takes a place from the
    /// client holding the most, if it holds more than the newcomer would: its newest queued
    /// check is refused, or, with none queued yet, its next ticket will be.
    fn evict_for(&mut self, newcomer_holds: usize) -> bool {
        let Some((&victim, _)) = self
            .clients
            .iter()
            .filter(|(_, w)| w.held > newcomer_holds + 1)
            .max_by_key(|(_, w)| w.held)
        else {
            return false;
        };
        let Some(waiting) = self.clients.get_mut(&victim) else { return false };
        match waiting.checks.pop_back() {
            Some(check) => {
                if waiting.checks.is_empty() {
                    self.fresh.retain(|c| *c != victim);
                    self.turns.retain(|c| *c != victim);
                }
                let _ = check.answer.send(Err(Refused::Full));
            }
            None => waiting.revoked += 1,
        }
        self.release(victim);
        true
    }

    /// Whether a ticket of `client` about to queue (or be dropped) had its place taken: if
    /// so, it holds no place any more.
    fn was_revoked(&mut self, client: Client) -> bool {
        let Some(waiting) = self.clients.get_mut(&client) else { return false };
        if waiting.revoked == 0 {
            return false;
        }
        waiting.revoked -= 1;
        if waiting.held == 0 && waiting.checks.is_empty() && waiting.revoked == 0 {
            self.clients.remove(&client);
        }
        true
    }
}

impl Checker {
    /// Starts `threads` checking threads (at least one).
    pub fn start(threads: usize, limits: QueueLimits) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            limits,
            legacy_cost: std::sync::atomic::AtomicU32::new(0),
            #[cfg(test)]
            skipped: std::sync::atomic::AtomicUsize::new(0),
        });
        for n in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || shared.work())?;
        }
        Ok(Self { shared })
    }

    /// From now on every check spends a bcrypt check of `cost` (or the highest cost given so
    /// far): bcrypt hashes of that cost may exist.
    pub fn raise_legacy_cost(&self, cost: u32) {
        self.shared.legacy_cost.fetch_max(cost, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every check spends a bcrypt check of `cost` from now on (0: none); what a scan of
    /// the hashes found.
    pub fn set_legacy_cost(&self, cost: u32) {
        self.shared.legacy_cost.store(cost, std::sync::atomic::Ordering::Relaxed);
    }

    /// A place in the queue for `client`'s next check, or why there is none. Taken before
    /// the login's other work, so a refused login costs nothing else; dropped unused, it is
    /// given back.
    pub fn admit(&self, client: Client) -> Result<Ticket, Refused> {
        let shared = &self.shared;
        let mut queues = shared.lock();
        if queues.closed {
            return Err(Refused::Stopped);
        }
        let holds = queues.clients.get(&client).map_or(0, |w| w.held);
        if holds >= shared.limits.per_client {
            return Err(Refused::ClientBusy);
        }
        if queues.held >= shared.limits.total && !queues.evict_for(holds) {
            return Err(Refused::Full);
        }
        queues.held += 1;
        queues.clients.entry(client).or_default().held += 1;
        drop(queues);
        Ok(Ticket { shared: Arc::clone(shared), client, queued: false })
    }
}

/// A place in the queue of password checks ([`Checker::admit`]).
pub struct Ticket {
    shared: Arc<Shared>,
    client: Client,
    /// The place went to a queued check.
    queued: bool,
}

impl Ticket {
    /// [`verify`] on one of the checking threads, in the client's turn: whether the password
    /// matches, or why it was not checked.
    pub async fn check(
        mut self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, Refused> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        {
            let mut queues = self.shared.lock();
            if queues.closed {
                return Err(Refused::Stopped);
            }
            if queues.was_revoked(self.client) {
                self.queued = true;
                return Err(Refused::Full);
            }
            let waiting = queues.clients.entry(self.client).or_default();
            waiting.checks.push_back(Check { password, stored, answer });
            if waiting.checks.len() == 1 {
                queues.fresh.push_back(self.client);
            }
            self.queued = true;
        }
        self.shared.ready.notify_one();
        // No answer: the thread panicked on it, or the threads are gone.
        answered.await.unwrap_or(Err(Refused::Stopped))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.queued {
            let mut queues = self.shared.lock();
            if !queues.was_revoked(self.client) {
                queues.release(self.client);
            }
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A checking thread: takes the next check in turn, until the `Checker` is dropped.
    fn work(&self) {
        let mut queues = self.lock();
        loop {
            if queues.closed {
                return;
            }
            let Some(check) = queues.next() else {
                queues = self.ready.wait(queues).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            drop(queues);
            if check.answer.is_closed() {
                #[cfg(test)]
                self.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                // A check that panicked fails its caller only (its answer is dropped); the
                // thread goes on with the next one.
                let legacy = self.legacy_cost.load(std::sync::atomic::Ordering::Relaxed);
                let checked = std::panic::catch_unwind(|| {
                    self::check(&check.password, check.stored.as_deref(), legacy)
                });
                match checked {
                    // The caller may have gone meanwhile: then nobody needs the answer.
                    Ok(matches) => {
                        let _ = check.answer.send(Ok(matches));
                    }
                    Err(_) => tracing::error!("a password check panicked"),
                }
            }
            queues = self.lock();
        }
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
    fn spryker_bcrypt_hashes_verify_as_symfony_makes_them() {
        let short = "change123";
        let long = "x".repeat(73);
        let symfony = |input: &[u8]| {
            bcrypt::hash_with_result(input, 4).unwrap().format_for_version(bcrypt::Version::TwoY)
        };
        let short_hash = symfony(short.as_bytes());
        assert_eq!(bcrypt_cost(&short_hash), Some(4));
        assert!(is_bcrypt(&short_hash) && !is_bcrypt(&hash(&Password::new(short)).unwrap()));
        // Longer than 72 bytes: bcrypt is given base64(sha512), 88 characters.
        assert_eq!(bcrypt_input(&long).len(), 88);
        assert_eq!(bcrypt_input(short), short.as_bytes());
        let long_hash = symfony(&bcrypt_input(&long));
        for legacy_cost in [0, 4] {
            assert!(check(&Password::new(short), Some(&short_hash), legacy_cost));
            assert!(!check(&Password::new("change12"), Some(&short_hash), legacy_cost));
            assert!(!check(&Password::new(""), Some(&symfony(b"")), legacy_cost));
            assert!(check(&Password::new(long.clone()), Some(&long_hash), legacy_cost));
            let cut = long[..72].to_owned() + "y";
            assert!(!check(&Password::new(cut), Some(&long_hash), legacy_cost));
            // An unknown e-mail still fails, whatever else is spent.
            assert!(!check(&Password::new(short), None, legacy_cost));
        }
    }

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

    fn slow_hash(passes: u32) -> String {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, passes, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string()
    }

    const ROOMY: QueueLimits = QueueLimits { per_client: 64, total: 256 };

    fn client(n: u8) -> Client {
        Some(ClientKey::of(std::net::IpAddr::from([192, 0, 2, n])))
    }

    #[tokio::test]
    async fn a_checker_answers_each_caller_and_skips_the_ones_that_left() {
        let checker = Checker::start(1, ROOMY).unwrap();
        let phc = hash(&Password::new("pw")).unwrap();
        let check = |password: &str, stored: Option<String>| {
            checker.admit(client(1)).unwrap().check(Password::new(password), stored)
        };
        // A slow check (t = 40) keeps the one thread busy while three callers queue and leave.
        let (first, ()) = tokio::join!(check("pw", Some(slow_hash(40))), async {
            // Whichever `join!` polls first, the slow check is queued before these.
            tokio::task::yield_now().await;
            for _ in 0..3 {
                let gone = check("pw", Some(phc.clone()));
                // Polled once (queued), then dropped: its caller has left.
                assert!(tokio::time::timeout(Duration::ZERO, gone).await.is_err());
            }
        });
        assert_eq!(first, Ok(true));
        let (right, wrong, unknown) = tokio::join!(
            check("pw", Some(phc.clone())),
            check("px", Some(phc)),
            check("pw", None),
        );
        assert_eq!((right, wrong, unknown), (Ok(true), Ok(false), Ok(false)));
        assert_eq!(checker.shared.skipped.load(std::sync::atomic::Ordering::Relaxed), 3);
        // Every place was given back.
        assert_eq!(checker.shared.lock().held, 0);
        assert!(checker.shared.lock().clients.is_empty());
    }

    #[tokio::test]
    async fn clients_take_turns_so_a_busy_one_delays_another_by_one_check_at_most() {
        let checker = Checker::start(1, ROOMY).unwrap();
        let slow = slow_hash(8);
        let check = |who: u8| {
            checker.admit(client(who)).unwrap().check(Password::new("pw"), Some(slow.clone()))
        };
        // Client 1 queues eight checks (each polled once, which queues it), then client 2 one.
        let mut busy: Vec<_> = (0..8).map(|_| Box::pin(check(1))).collect();
        for queued in &mut busy {
            assert!(tokio::time::timeout(Duration::ZERO, queued).await.is_err());
        }
        assert_eq!(check(2).await, Ok(true));
        // In turns, client 2 came after at most two of client 1's checks (the one running
        // when it arrived, and the one whose turn was before it); first come, first served,
        // after all eight.
        let left = checker.shared.lock().clients.get(&client(1)).map_or(0, |w| w.checks.len());
        assert!(left >= 5, "only {left} of client 1's checks were still waiting");
        for queued in busy {
            assert_eq!(queued.await, Ok(true));
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_or_takes_a_place_from_the_busiest_client() {
        let checker = Checker::start(1, QueueLimits { per_client: 2, total: 3 }).unwrap();
        // The thread is busy with a slow check, so what follows waits.
        let running =
            checker.admit(client(9)).unwrap().check(Password::new("pw"), Some(slow_hash(40)));
        let mut running = Box::pin(running);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut running).await.is_err());

        let a1 = checker.admit(client(1)).unwrap();
        let a2 = checker.admit(client(1)).unwrap();
        assert_eq!(checker.admit(client(1)).err(), Some(Refused::ClientBusy));
        let mut a1 = Box::pin(a1.check(Password::new("pw"), Some(slow_hash(1))));
        let mut a2 = Box::pin(a2.check(Password::new("pw"), Some(slow_hash(1))));
        for queued in [&mut a1, &mut a2] {
            assert!(tokio::time::timeout(Duration::ZERO, queued).await.is_err());
        }
        let b = checker.admit(client(2)).unwrap();
        // Full (three places held): client 3 takes the newest place of client 1, which holds
        // two; then nobody holds more than a newcomer would, and client 4 is refused.
        let c = checker.admit(client(3)).unwrap();
        assert_eq!(a2.await, Err(Refused::Full));
        assert_eq!(checker.admit(client(4)).err(), Some(Refused::Full));
        // An unused place is given back when dropped: client 4 gets in then.
        drop(b);
        let d = checker.admit(client(4)).unwrap();
        assert_eq!(running.await, Ok(true));
        assert_eq!(a1.await, Ok(true));
        let (c, d) = tokio::join!(
            c.check(Password::new("pw"), Some(slow_hash(1))),
            d.check(Password::new("px"), Some(slow_hash(1)))
        );
        assert_eq!((c, d), (Ok(true), Ok(false)));
        assert_eq!(checker.shared.lock().held, 0);
    }

    /// Queues a check of `client` as a ticket would (its answer is dropped).
    fn enqueue(queues: &mut Queues, client: Client) {
        let (answer, _) = tokio::sync::oneshot::channel();
        queues.held += 1;
        let waiting = queues.clients.entry(client).or_default();
        waiting.held += 1;
        waiting.checks.push_back(Check { password: Password::new("pw"), stored: None, answer });
        if waiting.checks.len() == 1 {
            queues.fresh.push_back(client);
        }
    }

    /// The clients of the next `n` checks the threads take.
    fn order(queues: &mut Queues, n: usize) -> Vec<u8> {
        let waiting =
            |queues: &Queues, n: u8| queues.clients.get(&client(n)).map_or(0, |w| w.checks.len());
        (0..n)
            .map(|_| {
                let before: Vec<usize> = (1..=30).map(|n| waiting(queues, n)).collect();
                queues.next().unwrap();
                (1..=30u8).find(|&n| waiting(queues, n) < before[usize::from(n) - 1]).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_fresh_client_goes_first_but_never_starves_the_waiting_ones() {
        let mut queues = Queues::default();
        for who in [1, 2] {
            for _ in 0..3 {
                enqueue(&mut queues, client(who));
            }
        }
        // Both were fresh once; then they take turns.
        assert_eq!(order(&mut queues, 2), [1, 2]);
        // A client with one login waiting comes before the next turn of the busy ones.
        enqueue(&mut queues, client(3));
        assert_eq!(order(&mut queues, 2), [3, 1]);
        // A stream of new clients gets four in a row, then one turn goes to the others.
        for who in 10..16 {
            enqueue(&mut queues, client(who));
        }
        assert_eq!(order(&mut queues, 7), [10, 11, 12, 13, 2, 14, 15]);
        assert_eq!(order(&mut queues, 2), [1, 2]);
        assert!(queues.next().is_none() && queues.held == 0);
    }
}
