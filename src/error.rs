//! The one domain error of glue-auth. It names what went wrong in the service's own terms;
//! `api::errors` is the only place that turns it into an HTTP status and a Glue code.

use std::borrow::Cow;

use sea_orm::DbErr;

/// One violated attribute rule (docs/wire-contract.md §1.4 step 6), rendered as `<attribute> =>
/// <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub attribute: &'static str,
    pub message: Cow<'static, str>,
}

impl Violation {
    pub const BLANK: &'static str = "This value should not be blank.";
    pub const MISSING: &'static str = "This field is missing.";
    pub const NOT_A_STRING: &'static str = "This value should be of type string.";
    pub const NOT_A_UUID: &'static str = "This is not a valid UUID.";
    pub const NOT_AN_EMAIL: &'static str = "This value is not a valid email address.";

    pub fn new(attribute: &'static str, message: &'static str) -> Self {
        Self { attribute, message: Cow::Borrowed(message) }
    }

    /// A violation whose message depends on the configuration (a policy's limits).
    pub fn owned(attribute: &'static str, message: String) -> Self {
        Self { attribute, message: Cow::Owned(message) }
    }
}

/// The company resources a company user reads (docs/wire-contract.md §3.5, §3.6); each has its own
/// codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyResource {
    CompanyUsers,
    Companies,
    CompanyBusinessUnits,
    CompanyRoles,
    CompanyBusinessUnitAddresses,
}

/// The company resources with a `mine` read, the only reads that answer "no company
/// context" (docs/wire-contract.md §3.5, §3.6): reads by id answer not found instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextResource {
    CompanyUsers,
    Companies,
    CompanyBusinessUnits,
    CompanyRoles,
}

/// A permission a company role grants (docs/wire-contract.md §2.1), by its Spryker plugin key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Lets a company user read its company's users.
    SeeCompanyUsers,
}

impl Permission {
    /// The key of the permission in `company_role_permission`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::SeeCompanyUsers => "SeeCompanyUsersPermissionPlugin",
        }
    }
}

/// Any error, boxed: what start-up and the command line report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The source of an error that is told to the log only.
pub type Source = BoxError;

/// What went wrong in the service, in its own terms. What the request looked like on the wire
/// (its shape, media type, paging, a missing token) is the API layer's (`api::errors`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The access token is malformed, expired, or not signed by one of our keys.
    #[error("invalid access token")]
    InvalidAccessToken,
    /// Wrong password, unknown e-mail or inactive customer: one answer for all.
    #[error("customer authentication failed")]
    AuthenticationFailed,
    /// Wrong password, unknown username or inactive agent: one answer for all.
    #[error("agent authentication failed")]
    AgentAuthenticationFailed,
    /// An agent's token at an operation for customers.
    #[error("an agent token at a customer operation")]
    AgentTokenNotAccepted,
    /// The company user is unknown, someone else's, inactive, or in a company that is not
    /// approved and active: one answer for all, so nobody learns whether a uuid exists.
    #[error("company-user authentication failed")]
    CompanyUserAuthenticationFailed,
    /// Too many failed logins for the e-mail or the client address.
    #[error("login blocked")]
    LoginBlocked,
    /// The client already has as many password checks waiting as it may.
    #[error("too many logins waiting from the client")]
    LoginsWaitingFromClient,
    /// The password-check queue is full.
    #[error("the password-check queue is full")]
    LoginQueueFull,
    /// The refresh token is unknown, expired, revoked or reused.
    #[error("refresh failed")]
    RefreshFailed,
    /// A customer reference other than the caller's.
    #[error("customer not found")]
    CustomerNotFound,
    /// A password change for a customer reference other than the caller's.
    #[error("password change for another customer")]
    CustomerUnauthorized,
    /// The new password and its confirmation differ; `attribute` is the one confirmed.
    #[error("{attribute} and confirmPassword differ")]
    PasswordsDiffer { attribute: &'static str },
    /// The current password given with a password change is not the customer's.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The restore key is unknown, used, expired or replaced: one answer for all.
    #[error("restore key not valid")]
    RestoreKeyInvalid,
    /// Too many password-reset requests for the e-mail or from the client address.
    #[error("too many password-reset requests")]
    ResetRequestsLimited,
    /// The caller's token carries no usable company user (none, deactivated, or its company
    /// is no longer approved and active), so it cannot read the company's resources.
    #[error("no company context for {0:?}")]
    NoCompanyContext(ContextResource),
    /// The resource does not exist in the caller's company (or its id is not a uuid).
    #[error("{0:?} not found")]
    NotFound(CompanyResource),
    /// A company user of another company than the caller's.
    #[error("company user of another company")]
    CompanyUserOfAnotherCompany,
    /// None of the caller's roles grants the permission the operation needs.
    #[error("permission {0:?} missing")]
    PermissionMissing(Permission),
    /// The request's attributes break one or more rules.
    #[error("{} attribute rule(s) violated", .0.len())]
    Validation(Vec<Violation>),
    /// The database did not answer (down, unreachable, timed out, or its writer stopped).
    #[error("the database is unavailable")]
    Unavailable(#[source] Source),
    /// A bug or an unexpected state; details go to the log only.
    #[error("internal error")]
    Internal(#[source] Source),
}

impl Error {
    pub fn internal(err: impl Into<Source>) -> Self {
        Self::Internal(err.into())
    }

    pub fn unavailable(err: impl Into<Source>) -> Self {
        Self::Unavailable(err.into())
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) { Self::unavailable(err) } else { Self::internal(err) }
    }
}

/// Whether `err` means the database cannot serve us now (down, unreachable, timed out, or
/// a SQLite file that cannot be written: read-only, full disk, I/O error), as opposed to a
/// bug in a statement.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => is_connection_error(e),
        _ => false,
    }
}

fn is_connection_error(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match err {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => db.code().is_some_and(|code| {
            if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                is_sqlite_storage_failure(&code)
            } else {
                is_postgres_unavailable(&code)
            }
        }),
        _ => false,
    }
}

/// PostgreSQL's SQLSTATEs for a server that went away under a query: class 08 (connection
/// exception), and 57P01–57P03 (shut down by an administrator, crashed, starting up): a
/// server restarted between a connection's check-out ping and its query.
fn is_postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLite's result codes (extended codes keep the primary one in the low byte) for storage
/// that fails: SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_CORRUPT 11, SQLITE_FULL 13,
/// SQLITE_CANTOPEN 14.
fn is_sqlite_storage_failure(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|code| matches!(code & 0xff, 8 | 10 | 11 | 13 | 14))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_went_away_is_unavailable_and_a_bad_statement_is_not() {
        for code in ["08000", "08006", "08P01", "57P01", "57P02", "57P03"] {
            assert!(is_postgres_unavailable(code), "{code}");
        }
        // Unique violation, syntax error, query canceled by statement_timeout.
        for code in ["23505", "42601", "57014"] {
            assert!(!is_postgres_unavailable(code), "{code}");
        }
        // SQLITE_FULL, SQLITE_IOERR_WRITE (778), SQLITE_READONLY; not SQLITE_CONSTRAINT (19).
        assert!(is_sqlite_storage_failure("13") && is_sqlite_storage_failure("778"));
        assert!(is_sqlite_storage_failure("8") && !is_sqlite_storage_failure("19"));
    }
}
