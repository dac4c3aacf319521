//! No secret in the service's logs over the whole test run.
//!
//! The first in-process service installs a subscriber that captures every log line of the
//! process at debug level (the HTTP client's own libraries at info). The helpers register
//! each password a test sends and each token a 2xx answer carries. A secret is matched as a
//! whole "word" of the token alphabet (`A-Z a-z 0-9 - _ .`), and a JWT also by its
//! signature: each log line's words go into a set when the line is written, and each
//! secret is looked up when it is registered, so it does not matter which comes first and
//! the cost stays constant per line. Every `TestApp`, when dropped, fails its test if any
//! leak was seen so far.

use std::{
    collections::HashSet,
    io,
    sync::{Mutex, Once, PoisonError},
};

/// Shorter secrets (test passwords like "pw") are too common to tell apart from other text.
const MIN_LEN: usize = 8;

struct Watch {
    line_words: HashSet<String>,
    secret_words: HashSet<String>,
    leaks: Vec<String>,
    /// The audit lines (target `glue_auth::audit`) so far, for tests that check them.
    audit_lines: Vec<String>,
}

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

fn with_watch<T>(f: impl FnOnce(&mut Watch) -> T) -> T {
    let mut guard = WATCH.lock().unwrap_or_else(PoisonError::into_inner);
    let watch = guard.get_or_insert_with(|| Watch {
        line_words: HashSet::new(),
        secret_words: HashSet::new(),
        leaks: Vec::new(),
        audit_lines: Vec::new(),
    });
    f(watch)
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .filter(|w| w.len() >= MIN_LEN)
}

/// What identifies a secret in a log line: its words, and a JWT's signature on its own.
fn secret_words(secret: &str) -> Vec<String> {
    let mut out: Vec<String> = words(secret).map(str::to_owned).collect();
    if let [_, _, signature] = secret.split('.').collect::<Vec<_>>()[..]
        && signature.len() >= MIN_LEN
    {
        out.push(signature.to_owned());
    }
    out
}

/// Captures the process's logs from now on (once per process).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                "debug,hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,tower=info",
            )
            .with_ansi(false)
            .with_writer(|| Sink)
            .try_init();
    });
}

/// Remembers `secret` (a password sent, a token received) and checks the lines so far.
pub fn register(secret: &str) {
    let found = secret_words(secret);
    if found.is_empty() {
        return;
    }
    with_watch(|watch| {
        for word in found {
            if watch.line_words.contains(&word) {
                watch.leaks.push(format!("a secret ({}…) was logged before", &word[..6]));
            }
            watch.secret_words.insert(word);
        }
    });
}

/// Every audit line the process's services wrote so far.
pub fn lines() -> Vec<String> {
    with_watch(|watch| watch.audit_lines.clone())
}

/// Fails the calling test if any secret was logged.
pub fn assert_no_leaks() {
    let leaks = with_watch(|watch| watch.leaks.clone());
    assert!(leaks.is_empty(), "secrets in the service's log: {leaks:?}");
}

/// The log sink: records each line's words and checks them against the secrets.
struct Sink;

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        with_watch(|watch| {
            for word in words(&line) {
                if watch.secret_words.contains(word) {
                    let shown = line.replace(word, "<SECRET>");
                    watch.leaks.push(format!("logged: {}", shown.trim_end()));
                }
                if !watch.line_words.contains(word) {
                    watch.line_words.insert(word.to_owned());
                }
            }
            if line.contains("glue_auth::audit") {
                watch.audit_lines.push(line.trim_end().to_owned());
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_logged_secret_is_caught_whichever_comes_first() {
    install();
    let before = "before-secret-0123456789abcdef";
    let after = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtdGVzdA";
    tracing::warn!(value = before, "a deliberate leak for the leak detector's self-test");
    register(before);
    register(after);
    tracing::warn!(
        part = "c2lnbmF0dXJlLW9mLWEtdGVzdA",
        "a deliberate leak for the leak detector's self-test"
    );
    // Take only this test's own leaks out: others' must still fail their tests.
    let leaks = with_watch(|watch| {
        let (mine, others) = std::mem::take(&mut watch.leaks)
            .into_iter()
            .partition(|l| l.contains("deliberate leak") || l.contains("(before…)"));
        watch.leaks = others;
        mine
    });
    assert!(leaks.len() >= 2, "{leaks:?}");
    assert!(leaks.iter().any(|l| l.contains("(before…)")), "{leaks:?}");
    assert!(leaks.iter().any(|l| l.contains("<SECRET>")), "{leaks:?}");
}
