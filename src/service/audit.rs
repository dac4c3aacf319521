//! What login audit lines say about who tried (`docs/security.md`): the client's address
//! key, and a keyed hash of the e-mail, so that an attack can be traced across lines and
//! instances without the log holding the address book. And how often a line repeats: the
//! same event for the same client and e-mail is written once per interval, then once more
//! with the number of lines left out.

use std::{
    collections::HashMap,
    fmt,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::client_address::ClientKey;

/// Who a login audit line is about.
#[derive(Debug, Clone)]
pub struct Audit {
    pub client: Option<ClientKey>,
    pub email: EmailKey,
}

impl Audit {
    /// The client's key, or `-` for a caller without an address.
    pub fn client(&self) -> &dyn fmt::Display {
        match &self.client {
            Some(client) => client,
            None => &"-",
        }
    }
}

/// The first 64 bits of HMAC-SHA-256 of a normalized e-mail, as hex: the same e-mail gives
/// the same key on every instance sharing the signing key, and the key does not give the
/// e-mail back (nobody can try candidates without the secret).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailKey(String);

impl fmt::Display for EmailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most (event, client, e-mail) triples remembered; past that the memory starts again.
const REMEMBERED: usize = 10_000;

/// The keyed hash and the repetition limit of login audit lines.
pub struct AuditLog {
    key: aws_lc_rs::hmac::Key,
    interval: Duration,
    recent: Mutex<HashMap<LineKey, Recent>>,
}

/// Which line repeats: the event, the client and the e-mail.
type LineKey = (&'static str, Option<ClientKey>, EmailKey);

struct Recent {
    written: Instant,
    left_out: u64,
}

impl AuditLog {
    /// `secret` keys the e-mail hash; a line repeats at most once per `interval`.
    pub fn new(secret: &[u8], interval: Duration) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            interval,
            recent: Mutex::new(HashMap::new()),
        }
    }

    pub fn email_key(&self, normalized_email: &str) -> EmailKey {
        let tag = aws_lc_rs::hmac::sign(&self.key, normalized_email.as_bytes());
        EmailKey(tag.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Calls `write` with the number of lines left out since the last one written, unless a
    /// line of `event` for the same client and e-mail was written within the interval.
    pub fn repeated(&self, event: &'static str, audit: &Audit, write: impl FnOnce(u64)) {
        self.repeated_at(Instant::now(), event, audit, write);
    }

    fn repeated_at(
        &self,
        now: Instant,
        event: &'static str,
        audit: &Audit,
        write: impl FnOnce(u64),
    ) {
        let key = (event, audit.client, audit.email.clone());
        let left_out = {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            match recent.get_mut(&key) {
                Some(seen) if now.duration_since(seen.written) < self.interval => {
                    seen.left_out += 1;
                    return;
                }
                Some(seen) => {
                    let left_out = seen.left_out;
                    *seen = Recent { written: now, left_out: 0 };
                    left_out
                }
                None => {
                    if recent.len() >= REMEMBERED {
                        recent.clear();
                    }
                    recent.insert(key, Recent { written: now, left_out: 0 });
                    0
                }
            }
        };
        write(left_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_keys_are_stable_per_secret_and_differ_between_secrets() {
        let log = AuditLog::new(b"one secret", Duration::from_secs(60));
        let other = AuditLog::new(b"another secret", Duration::from_secs(60));
        assert_eq!(log.email_key("sonia@acme.com"), log.email_key("sonia@acme.com"));
        assert_ne!(log.email_key("sonia@acme.com"), log.email_key("karl@acme.com"));
        assert_ne!(log.email_key("sonia@acme.com"), other.email_key("sonia@acme.com"));
        assert_eq!(log.email_key("sonia@acme.com").to_string().len(), 16);
    }

    #[test]
    fn a_repeated_line_is_written_once_per_interval_then_with_the_count_left_out() {
        let log = AuditLog::new(b"secret", Duration::from_millis(200));
        let audit = Audit { client: None, email: log.email_key("a@b.c") };
        let written = std::cell::RefCell::new(Vec::new());
        let start = Instant::now();
        let at = |ms: u64, event: &'static str| {
            let now = start + Duration::from_millis(ms);
            log.repeated_at(now, event, &audit, |left_out| written.borrow_mut().push(left_out));
        };
        for ms in [0, 10, 50, 100, 199] {
            at(ms, "login_failed");
        }
        // Another event is another line.
        at(10, "login_blocked");
        assert_eq!(*written.borrow(), [0, 0]);
        at(200, "login_failed");
        assert_eq!(*written.borrow(), [0, 0, 4]);
        at(300, "login_failed");
        assert_eq!(*written.borrow(), [0, 0, 4], "within the interval of the last line");
    }
}
