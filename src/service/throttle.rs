//! Login blocking (spec §3.1, `docs/security.md`): attempts are counted per e-mail and per
//! client address in the database, so every instance of the service sees the same counts.
//!
//! An attempt is counted *before* its password is checked, by one atomic statement that
//! also decides whether it may go ahead ([`reserve`]): however many arrive at once, at most
//! the limit are checked per subject and window. A failed check leaves its count; a success
//! clears the e-mail's counter and gives the address its attempt back ([`succeeded`]); a
//! check that never ran gives every attempt back ([`release`]).

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

/// A subject's counter starts again: its window has passed without a block, or its block has.
const RESTART: &str = "((login_attempt.blocked_until IS NULL AND login_attempt.window_started_at <= ?) \
     OR login_attempt.blocked_until <= ?)";

/// An attempt counted against one subject: in which window, so that giving it back never
/// touches a later window's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub subject: String,
    pub window_started_at: i64,
}

/// Counts an attempt against each of `subjects` if every one of them may take another:
/// `Some` with the counts when the password may be checked, `None` when a subject is at its
/// limit or blocked (nothing is left counted then).
///
/// One statement per login: an upsert whose update runs only while the subject is under its
/// limit (`ON CONFLICT … DO UPDATE … WHERE`), returning the rows it counted. A row that is
/// not returned was not counted, so concurrent attempts, in this instance or another, are
/// admitted one by one up to the limit; the attempt that reaches it also sets the block.
pub async fn reserve(
    db: &impl ConnectionTrait,
    subjects: &[String],
    now: i64,
    policy: Policy,
) -> Result<Option<Vec<Counted>>, DbErr> {
    let rows = vec!["(?, 1, ?, ?)"; subjects.len()].join(", ");
    let sql = format!(
        "INSERT INTO login_attempt (subject, failures, window_started_at, blocked_until) \
         VALUES {rows} \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = CASE WHEN {RESTART} THEN 1 ELSE login_attempt.failures + 1 END, \
           window_started_at = CASE WHEN {RESTART} THEN excluded.window_started_at \
                                    ELSE login_attempt.window_started_at END, \
           blocked_until = CASE WHEN (CASE WHEN {RESTART} THEN 1 \
                                          ELSE login_attempt.failures + 1 END) >= ? \
                                THEN ? ELSE NULL END \
         WHERE {RESTART} OR (login_attempt.blocked_until IS NULL AND login_attempt.failures < ?) \
         RETURNING subject, window_started_at"
    );
    let window_start = now.saturating_sub(policy.window);
    let blocked_until = now.saturating_add(policy.block);
    let first_blocks = (policy.attempts <= 1).then_some(blocked_until);
    let restart = || [Value::from(window_start), Value::from(now)];
    let mut values: Vec<Value> = Vec::with_capacity(subjects.len() * 3 + 13);
    for subject in subjects {
        values.extend([subject.clone().into(), now.into(), first_blocks.into()]);
    }
    values.extend(restart());
    values.extend(restart());
    values.extend(restart());
    values.extend([policy.attempts.into(), blocked_until.into()]);
    values.extend(restart());
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
        return Ok(Some(counted));
    }
    // Another subject was at its limit: this attempt is refused, and its counts are undone.
    give_back(db, &counted, policy).await?;
    Ok(None)
}

/// Takes one attempt off each of `counted` (in the window it was counted in), lifting a
/// block that attempt had set.
async fn give_back(
    db: &impl ConnectionTrait,
    counted: &[Counted],
    policy: Policy,
) -> Result<(), DbErr> {
    const SQL: &str = "UPDATE login_attempt SET failures = failures - 1, \
        blocked_until = CASE WHEN failures - 1 < ? THEN NULL ELSE blocked_until END \
        WHERE subject = ? AND window_started_at = ? AND failures > 0";
    for counted in counted {
        let values = vec![
            policy.attempts.into(),
            counted.subject.clone().into(),
            counted.window_started_at.into(),
        ];
        db.execute_raw(statement(db.get_database_backend(), SQL, values)).await?;
    }
    Ok(())
}

/// The password was right: the e-mail's failures are forgotten, and the attempt counted
/// against the address is given back (a busy office behind one address is not blocked by
/// its own successful logins).
pub async fn succeeded(
    db: &impl ConnectionTrait,
    counted: &[Counted],
    email_subject: &str,
    policy: Policy,
) -> Result<(), DbErr> {
    let stmt = statement(
        db.get_database_backend(),
        "DELETE FROM login_attempt WHERE subject = ?",
        vec![email_subject.to_owned().into()],
    );
    db.execute_raw(stmt).await?;
    let others: Vec<Counted> =
        counted.iter().filter(|c| c.subject != email_subject).cloned().collect();
    give_back(db, &others, policy).await
}

/// The password was never checked (the check queue refused it): every count is given back.
pub async fn release(
    db: &impl ConnectionTrait,
    counted: &[Counted],
    policy: Policy,
) -> Result<(), DbErr> {
    give_back(db, counted, policy).await
}

/// Deletes the counters that no longer count anything at `now` (their window and any block
/// have passed: the next attempt would start them again), so that guesses for ever new
/// e-mails do not grow the table for good.
pub async fn purge(db: &impl ConnectionTrait, now: i64, policy: Policy) -> Result<u64, DbErr> {
    let sql = format!("DELETE FROM login_attempt WHERE {RESTART}");
    let values = vec![now.saturating_sub(policy.window).into(), now.into()];
    Ok(db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?.rows_affected())
}
