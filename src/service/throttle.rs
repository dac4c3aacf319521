//! Login blocking (docs/wire-contract.md §3.1, `docs/security.md`): attempts are counted per e-mail
//! and per client address in the database, so every instance of the service sees the same counts.
//!
//! An attempt is counted *before* its password is checked, by one atomic statement that
//! also decides whether it may go ahead ([`reserve`]): it takes a place as `pending` while
//! the failures and the pending attempts together are under the limit, so however many
//! arrive at once, in this instance or another, at most the limit are checked per subject
//! and window. Once checked it is settled ([`settle`]): a wrong password becomes a failure
//! (and the failure that reaches the limit blocks the subject), a right one clears the
//! e-mail's failures, and either way its place is given back.

use entity::login_attempt;
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, Statement, Value,
    sea_query::{Expr, ExprTrait, Query},
};

/// The limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: i32,
    pub window: i64,
    pub block: i64,
}

impl Policy {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            attempts: config.login_block_attempts,
            window: config.login_block_window,
            block: config.login_block_duration,
        }
    }

    /// What a [`purge`] must keep: the counters live as long as the longest window of any
    /// of their kinds, logins or password-reset requests (docs/wire-contract.md §3.10).
    pub fn for_purge(config: &crate::config::Config) -> Self {
        Self {
            window: Ord::max(config.login_block_window, config.password_reset_window),
            ..Self::of(config)
        }
    }
}

/// `?` placeholders in the dialect of `backend` (PostgreSQL numbers them).
fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(ch);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The column `blocked` for the query that reads it with the customer (one round trip per
/// login): whether one of `subjects` (the e-mail's and the client address's, the e-mail's
/// twice when there is no address) is blocked at `now`. A blocked login is refused there,
/// without a write.
pub fn blocked_column(subjects: [&str; 2], now: i64) -> (Expr, &'static str) {
    use login_attempt::Column as A;
    let blocked = Query::select()
        .expr(Expr::cust("1"))
        .from(login_attempt::Entity)
        .and_where(Expr::col(A::Subject).is_in(subjects))
        .and_where(Expr::col(A::BlockedUntil).gt(now))
        .take();
    (Expr::exists(blocked), "blocked")
}

/// A subject's counter starts again: its window has passed without a block, or its block
/// has. Its pending attempts are forgotten then too (one whose instance died would
/// otherwise hold its place for good); their settling no longer touches the new window.
const RESTART: &str = "((login_attempt.blocked_until IS NULL AND login_attempt.window_started_at <= ?) \
     OR login_attempt.blocked_until <= ?)";

/// An attempt counted against one subject: in which window, so that settling it never
/// touches a later window's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub subject: String,
    pub window_started_at: i64,
}

/// Why [`reserve`] did not count an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCounted {
    /// A subject is blocked, or has as many failures as the limit.
    Blocked,
    /// A subject's failures and pending attempts fill the limit: once those are checked
    /// there may be room again.
    Busy,
}

/// Counts an attempt as pending against each of `subjects` if every one of them has room:
/// the counts, when the password may be checked; otherwise why not (nothing is left
/// counted then).
///
/// One statement per login: an upsert whose update runs only while the subject has room
/// (`ON CONFLICT … DO UPDATE … WHERE`), returning the rows it counted. A row that is not
/// returned was not counted, so concurrent attempts are admitted one by one up to the limit.
pub async fn reserve(
    db: &impl ConnectionTrait,
    subjects: &[String],
    now: i64,
    policy: Policy,
) -> Result<Result<Vec<Counted>, NotCounted>, DbErr> {
    let rows = vec!["(?, 0, 1, ?, NULL)"; subjects.len()].join(", ");
    let sql = format!(
        "INSERT INTO login_attempt (subject, failures, pending, window_started_at, blocked_until) \
         VALUES {rows} \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = CASE WHEN {RESTART} THEN 0 ELSE login_attempt.failures END, \
           pending = CASE WHEN {RESTART} THEN 1 ELSE login_attempt.pending + 1 END, \
           window_started_at = CASE WHEN {RESTART} THEN excluded.window_started_at \
                                    ELSE login_attempt.window_started_at END, \
           blocked_until = CASE WHEN {RESTART} THEN NULL ELSE login_attempt.blocked_until END \
         WHERE {RESTART} OR (login_attempt.blocked_until IS NULL \
                             AND login_attempt.failures + login_attempt.pending < ?) \
         RETURNING subject, window_started_at"
    );
    let restart = [Value::from(now.saturating_sub(policy.window)), Value::from(now)];
    let mut values: Vec<Value> = Vec::with_capacity(subjects.len() * 2 + 11);
    for subject in subjects {
        values.extend([subject.clone().into(), now.into()]);
    }
    for _ in 0..5 {
        values.extend(restart.iter().cloned());
    }
    values.push(policy.attempts.into());
    let rows = db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await?;
    let counted = rows
        .iter()
        .map(|row| {
            Ok(Counted {
                subject: row.try_get_by_index(0)?,
                window_started_at: row.try_get_by_index(1)?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    if counted.len() == subjects.len() {
        return Ok(Ok(counted));
    }
    // Another subject had no room: this attempt is refused, and its places given back.
    settle(db, &counted, Outcome::NotChecked, now, policy).await?;
    let full = format!(
        "SELECT 1 FROM login_attempt WHERE subject IN ({}) \
         AND (blocked_until > ? OR failures >= ?)",
        vec!["?"; subjects.len()].join(", ")
    );
    let mut values: Vec<Value> = subjects.iter().map(|s| s.clone().into()).collect();
    values.extend([now.into(), policy.attempts.into()]);
    let blocked = db.query_one_raw(statement(db.get_database_backend(), &full, values)).await?;
    Ok(Err(if blocked.is_some() { NotCounted::Blocked } else { NotCounted::Busy }))
}

/// How a counted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A wrong password (or an unknown or inactive customer): a failure of every subject.
    Failed,
    /// The right password: the failures of the subject `email` are forgotten (the address's
    /// stay: a success does not undo guesses made from there).
    Succeeded { email: &'a str },
    /// The password was never checked.
    NotChecked,
}

/// Settles the attempt counted as `counted`: gives its places back and records `outcome`,
/// in the window each subject counted it in, in one statement for all of them. A failure
/// that reaches the limit blocks the subject until `now` plus the block time.
pub async fn settle(
    db: &impl ConnectionTrait,
    counted: &[Counted],
    outcome: Outcome<'_>,
    now: i64,
    policy: Policy,
) -> Result<(), DbErr> {
    if counted.is_empty() {
        return Ok(());
    }
    // The window each row's attempt was counted in.
    let window = format!("CASE subject {} END", vec!["WHEN ? THEN ?"; counted.len()].join(" "));
    let sql = format!(
        "UPDATE login_attempt SET \
         pending = CASE WHEN window_started_at = {window} AND pending > 0 THEN pending - 1 \
                        ELSE pending END, \
         failures = CASE WHEN subject = ? THEN 0 WHEN window_started_at = {window} \
                         THEN failures + ? ELSE failures END, \
         blocked_until = CASE WHEN subject = ? THEN NULL \
                              WHEN window_started_at = {window} AND ? = 1 \
                                   AND failures + 1 >= ? THEN ? \
                              ELSE blocked_until END \
         WHERE subject IN ({})",
        vec!["?"; counted.len()].join(", ")
    );
    let windows: Vec<Value> = counted
        .iter()
        .flat_map(|c| [c.subject.clone().into(), c.window_started_at.into()])
        .collect();
    // No subject is empty: `''` clears none.
    let cleared = match outcome {
        Outcome::Succeeded { email } => email.to_owned(),
        Outcome::Failed | Outcome::NotChecked => String::new(),
    };
    let added = i32::from(outcome == Outcome::Failed);
    let mut values: Vec<Value> = windows.clone();
    values.push(cleared.clone().into());
    values.extend(windows.iter().cloned());
    values.push(added.into());
    values.push(cleared.into());
    values.extend(windows);
    values.extend([added.into(), policy.attempts.into(), now.saturating_add(policy.block).into()]);
    values.extend(counted.iter().map(|c| Value::from(c.subject.clone())));
    db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?;
    Ok(())
}

/// Deletes the counters that no longer count anything at `now` (their window and any block
/// have passed: the next attempt would start them again), so that guesses for ever new
/// e-mails do not grow the table for good.
pub async fn purge(db: &impl ConnectionTrait, now: i64, policy: Policy) -> Result<u64, DbErr> {
    let sql = format!("DELETE FROM login_attempt WHERE {RESTART}");
    let values = vec![now.saturating_sub(policy.window).into(), now.into()];
    Ok(db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?.rows_affected())
}
