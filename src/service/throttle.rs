//! Login blocking (spec §3.1): failed logins are counted per e-mail and per client address in
//! the database, so every instance of the service sees the same counts. Reaching the limit
//! within the window blocks the subject for a while.

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

/// `?` placeholders in the dialect of `backend` (PostgreSQL numbers them).
fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
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

/// What the counters say about a login's subjects.
#[derive(Debug, Default, Clone, Copy)]
pub struct Standing {
    /// One of the subjects is blocked.
    pub blocked: bool,
    /// The first subject has a counter (so a successful login has something to clear).
    pub first_counted: bool,
}

/// The columns `blocked` and `first_counted` of a [`Standing`], as expressions for the query
/// that reads them with the customer (one round trip per login): `subjects` are the e-mail's
/// and the client address's (the e-mail's twice when there is no address).
pub fn standing_columns(subjects: [&str; 2], now: i64) -> [(Expr, &'static str); 2] {
    use login_attempt::Column as A;
    let counters = |subjects: &[&str]| {
        Query::select()
            .expr(Expr::cust("1"))
            .from(login_attempt::Entity)
            .and_where(Expr::col(A::Subject).is_in(subjects.iter().copied()))
            .take()
    };
    let blocked = counters(&subjects).and_where(Expr::col(A::BlockedUntil).gt(now)).take();
    [(Expr::exists(blocked), "blocked"), (Expr::exists(counters(&subjects[..1])), "first_counted")]
}

/// Counts a failed login against each subject, in one atomic statement per subject (safe
/// against concurrent instances): a window that has passed starts again at one.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    subjects: &[String],
    now: i64,
    policy: Policy,
) -> Result<(), DbErr> {
    const SQL: &str = "\
        INSERT INTO login_attempt (subject, failures, window_started_at, blocked_until) \
        VALUES (?, 1, ?, CASE WHEN 1 >= ? THEN ? ELSE NULL END) \
        ON CONFLICT (subject) DO UPDATE SET \
          failures = CASE WHEN login_attempt.window_started_at <= ? THEN 1 \
                          ELSE login_attempt.failures + 1 END, \
          window_started_at = CASE WHEN login_attempt.window_started_at <= ? THEN ? \
                                   ELSE login_attempt.window_started_at END, \
          blocked_until = CASE WHEN (CASE WHEN login_attempt.window_started_at <= ? THEN 1 \
                                          ELSE login_attempt.failures + 1 END) >= ? THEN ? \
                               ELSE login_attempt.blocked_until END";
    let window_start = now - policy.window;
    let blocked_until = now + policy.block;
    for subject in subjects {
        let values: Vec<Value> = vec![
            subject.clone().into(),
            now.into(),
            policy.attempts.into(),
            blocked_until.into(),
            window_start.into(),
            window_start.into(),
            now.into(),
            window_start.into(),
            policy.attempts.into(),
            blocked_until.into(),
        ];
        db.execute_raw(statement(db.get_database_backend(), SQL, values)).await?;
    }
    Ok(())
}

/// Forgets the failures of a subject (after a successful login for that e-mail).
pub async fn clear(db: &impl ConnectionTrait, subject: &str) -> Result<(), DbErr> {
    let stmt = statement(
        db.get_database_backend(),
        "DELETE FROM login_attempt WHERE subject = ?",
        vec![subject.to_owned().into()],
    );
    db.execute_raw(stmt).await?;
    Ok(())
}
