//! Sessions: logging in, refreshing with rotation and reuse detection, revoking, purging
//! (docs/wire-contract.md §2.3, §3.1, §3.3, §3.4). Access tokens are stateless JWTs; refresh tokens
//! are random secrets of which only a SHA-256 hash is stored ([`crate::auth::refresh_token`]).

use std::sync::Arc;

use entity::{customer, refresh_token};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, JoinType, QueryFilter,
    QuerySelect, Statement, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

mod agents;
mod passwords;

pub use passwords::{PasswordChange, PasswordRestore};

use super::{
    Reader,
    audit::{Audit, AuditLog},
    membership,
    password_policy::PasswordPolicy,
    session_cap::SessionCap,
    sql::CachedSql,
    throttle::{self, NotCounted, Outcome},
    token_store::{NewToken, Presented, Refreshed, Successor, TokenStore},
    validate::normalize_email,
};
use crate::{
    auth::{
        keys::KeySet,
        password::{self, Password, QueueLimits, Refused},
        refresh_token::{mint, stored_form},
        tokens::{Identity, Principal, TokenKind, TokenService},
    },
    client_address::ClientKey,
    clock::Clock,
    config::Config,
    error::Error,
    mail::Mailer,
};

/// What issuing a session needs, built once at start-up.
pub struct Sessions {
    tokens: TokenService,
    clock: Arc<Clock>,
    /// Refresh-token lifetime, seconds.
    refresh_ttl: i64,
    /// Seconds after a rotation within which presenting the rotated token again revokes
    /// nothing (`--refresh-reuse-grace`).
    refresh_reuse_grace: i64,
    /// The client id recorded with refresh tokens (the tokens' audience).
    client_id: String,
    throttle: throttle::Policy,
    /// What a purge of the counters keeps (`throttle::Policy::for_purge`).
    purge: throttle::Policy,
    /// How audit lines name a login's client and e-mail, and how often they repeat.
    audit: AuditLog,
    /// Password checks, one per CPU at once, in turns per client: Argon2id takes ~19 MiB and
    /// a core for ~16 ms, so unbounded concurrency only multiplies memory (256 logins took
    /// ~5 GB) and makes every login slow. A check still queued when its client leaves is
    /// skipped.
    passwords: password::Checker,
    /// Where every write goes.
    store: TokenStore,
    /// The sessions each customer keeps.
    session_cap: SessionCap,
    /// What a new password must be.
    policy: PasswordPolicy,
    /// How restore keys are made and mailed.
    restores: Arc<passwords::Restores>,
}

impl Sessions {
    /// The sessions of `config`, signed with `keys`, timed by `clock`, written to `store`,
    /// mailing through `mailer`; starts the password-checking threads.
    pub fn new(
        config: &Config,
        keys: KeySet,
        clock: Arc<Clock>,
        store: TokenStore,
        mailer: Mailer,
    ) -> Result<Self, crate::error::BoxError> {
        let audit = AuditLog::new(keys.signing_key().derived_secret(), AUDIT_REPEAT_INTERVAL);
        let tokens =
            TokenService::new(keys, &config.issuer, &config.audience, config.access_token_ttl)
                .with_cache(config.access_token_cache);
        let limits = QueueLimits {
            per_client: usize::try_from(config.login_queue_per_address).unwrap_or(usize::MAX),
            total: usize::try_from(config.login_queue).unwrap_or(usize::MAX),
        };
        Ok(Self {
            tokens,
            clock,
            refresh_ttl: i64::try_from(config.refresh_token_ttl).unwrap_or(i64::MAX),
            refresh_reuse_grace: i64::try_from(config.refresh_reuse_grace).unwrap_or(i64::MAX),
            client_id: config.audience.clone(),
            throttle: throttle::Policy::of(config),
            purge: throttle::Policy::for_purge(config),
            audit,
            passwords: password::Checker::start(crate::config::cpus(), limits)?,
            store,
            session_cap: SessionCap::new(
                usize::try_from(config.max_sessions_per_customer).unwrap_or(usize::MAX),
            ),
            policy: PasswordPolicy::of(config),
            restores: Arc::new(passwords::Restores::new(config, mailer)?),
        })
    }

    /// `POST /token`: the tokens `grant` earns, under the rules of the endpoint each grant
    /// stands for. In a token exchange a subject token that is not valid is refused like a
    /// membership that is not usable: one failure, nothing learned.
    pub async fn grant(
        &self,
        db: &Reader,
        grant: Grant,
        client: Option<ClientKey>,
    ) -> Result<Issued, Error> {
        match grant {
            Grant::Password(credentials) => self.login(db, credentials, client).await,
            Grant::RefreshToken(presented) => self.refresh(db, &presented).await,
            Grant::CompanyUser { subject_token, company_user } => {
                let Ok(Principal::Customer(caller)) = self.authenticate(&subject_token) else {
                    return Err(Error::CompanyUserAuthenticationFailed);
                };
                self.company_user_session(&caller, company_user).await
            }
        }
    }

    /// Whose access token `token` is, now: a valid token signed by one of our keys, or
    /// `InvalidAccessToken`.
    pub fn authenticate(&self, token: &str) -> Result<Principal, Error> {
        self.tokens.verify_any(token, self.clock.now()).map_err(|_| Error::InvalidAccessToken)
    }

    /// The public keys that verify access tokens, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.tokens.keys().jwks()
    }
}

/// How often one login audit line may repeat for the same event, client and e-mail.
const AUDIT_REPEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A login attempt counted as pending (`throttle::reserve`) until it is settled. Should the
/// login end before that (its client disconnected while it waited), the places are given
/// back from a task of their own, so they do not hold the subject's room until the window
/// passes.
/// What a login has once it is admitted: how its audit lines name it, its place in the
/// check queue, its time, and the subjects its attempt counts against (its own first, then
/// the client address's).
struct LoginStart {
    audit: Audit,
    ticket: password::Ticket,
    now: i64,
    subjects: Vec<String>,
}

struct Attempt<'a> {
    sessions: &'a Sessions,
    counted: Option<Vec<throttle::Counted>>,
    now: i64,
}

impl Attempt<'_> {
    async fn settle(mut self, outcome: Outcome<'_>) -> Result<(), Error> {
        let counted = self.counted.take().unwrap_or_default();
        let sessions = self.sessions;
        let writer = sessions.store.counters().await?;
        throttle::settle(&*writer, &counted, outcome, self.now, sessions.throttle).await?;
        Ok(())
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let Some(counted) = self.counted.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, policy, now) = (self.sessions.store.clone(), self.sessions.throttle, self.now);
        runtime.spawn(async move {
            let settled = match store.counters().await {
                Ok(writer) => {
                    throttle::settle(&*writer, &counted, Outcome::NotChecked, now, policy)
                        .await
                        .map_err(Error::from)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = settled {
                tracing::warn!(error = %e, "giving back an abandoned login attempt failed");
            }
        });
    }
}

/// The answer to a login the check queue refused, logged.
fn queue_error(refused: Refused, audit: &Audit) -> Error {
    match refused {
        Refused::ClientBusy => {
            tracing::debug!(client = %audit.client(), "login refused: the client's share of checks is full");
            Error::LoginsWaitingFromClient
        }
        Refused::Full => {
            tracing::warn!(client = %audit.client(), "login refused: the password-check queue is full");
            Error::LoginQueueFull
        }
        Refused::Stopped => Error::internal("the password-check threads have stopped"),
    }
}

/// Revokes the successors of token `$1` at `$2`, following `rotated_into_id` (ids grow along
/// a chain; `UNION` would end even a cycle).
const REVOKE_DESCENDANTS: &str = "WITH RECURSIVE chain(id) AS (\
SELECT rotated_into_id FROM refresh_token WHERE id = $1 AND rotated_into_id IS NOT NULL \
UNION SELECT t.rotated_into_id FROM refresh_token t JOIN chain ON t.id = chain.id \
WHERE t.rotated_into_id IS NOT NULL) \
UPDATE refresh_token SET revoked_at = $2 WHERE id IN (SELECT id FROM chain) AND revoked_at IS NULL";

/// What `POST /access-tokens` logs in with: the e-mail address as typed, and the password.
#[derive(Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

/// A grant of `POST /token` (docs/wire-contract.md §3.8a): what the client exchanges for
/// tokens.
#[derive(Debug)]
pub enum Grant {
    /// `password`: a customer login, as `POST /access-tokens`.
    Password(Credentials),
    /// `refresh_token`: a rotation, as `POST /refresh-tokens`.
    RefreshToken(String),
    /// RFC 8693 token exchange: the access token `subject_token` for a token of its
    /// customer's company user `company_user`, as `POST /company-user-access-tokens`.
    CompanyUser { subject_token: String, company_user: Uuid },
}

/// A freshly issued pair of tokens.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    /// The company user the access token carries, if any.
    pub company_user: Option<Uuid>,
}

/// The customer a login names, as the login reads it.
#[derive(Debug)]
struct LoginCustomer {
    id: i32,
    customer_reference: String,
    password_hash: Option<String>,
    is_active: bool,
    /// The default company user: the usable membership marked default, else the oldest
    /// usable one, else none. Deterministic where Spryker takes the first row it gets.
    company_user: Option<Uuid>,
}

/// A login's reads in one statement: whether one of its subjects is blocked, and the
/// customer of the e-mail with its default company user (one row, the customer's columns
/// null for an unknown e-mail). On PostgreSQL each read is a round trip: with three reads
/// and the insert, PostgreSQL took 9–10% of one CPU while logins saturated the service.
fn login_query(backend: DbBackend, email: &str, subjects: [&str; 2], now: i64) -> Statement {
    use customer::Column as C;
    let login = Alias::new("login");
    let column = |c: C| Expr::col((login.clone(), c));
    let mut select = Query::select();
    let (blocked, name) = throttle::blocked_column(subjects, now);
    select
        .expr_as(blocked, name)
        .exprs([C::Id, C::CustomerReference, C::PasswordHash, C::IsActive].map(column))
        .expr_as(membership::default_uuid_of(backend, column(C::Id)), "company_user")
        .from_subquery(Query::select().expr(Expr::cust("1")).take(), Alias::new("one"))
        .join_as(
            JoinType::LeftJoin,
            customer::Entity,
            login.clone(),
            column(C::EmailNormalized).eq(email),
        );
    backend.build(&select)
}
static LOGIN: CachedSql = CachedSql::new(|backend| login_query(backend, "", ["", ""], 0));

/// Whether the e-mail's subject or the client's (if known) is blocked at `now`, and the
/// customer of `email`.
async fn login_lookup(
    db: &impl ConnectionTrait,
    email: &str,
    (email_subject, client_subject): (&str, Option<&str>),
    now: i64,
) -> Result<(bool, Option<LoginCustomer>), DbErr> {
    let second = client_subject.unwrap_or(email_subject);
    let stmt = LOGIN.bind(
        db.get_database_backend(),
        [email_subject.into(), second.into(), now.into(), email.to_owned().into()],
    );
    let row = db
        .query_one_raw(stmt)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the login's row".into()))?;
    let blocked = row.try_get("", "blocked")?;
    let found = match row.try_get::<Option<i32>>("", "id")? {
        None => None,
        Some(id) => Some(LoginCustomer {
            id,
            customer_reference: row.try_get("", "customer_reference")?,
            password_hash: row.try_get("", "password_hash")?,
            is_active: row.try_get("", "is_active")?,
            company_user: row.try_get("", "company_user")?,
        }),
    };
    Ok((blocked, found))
}

impl Sessions {
    /// A new refresh token of a new family: its secret and the row to store (for a
    /// company-user token, the token store sets the row's company user).
    fn new_refresh_token(
        &self,
        identity: &Identity,
        now: i64,
    ) -> Result<(String, NewToken), Error> {
        let minted = mint()?;
        let row = NewToken {
            token_hash: minted.stored,
            family_id: Uuid::new_v4(),
            customer_id: identity.customer_id,
            company_user_id: None,
            scopes: identity.kind.scope(),
            client_id: self.client_id.clone(),
            issued_at: now,
            expires_at: now.saturating_add(self.refresh_ttl),
        };
        Ok((minted.token, row))
    }

    /// What the client gets once `refresh_token` is stored: with an access token for
    /// `identity`.
    fn issued(
        &self,
        identity: &Identity,
        refresh_token: String,
        now: i64,
    ) -> Result<Issued, Error> {
        Ok(Issued {
            access_token: self.tokens.issue(identity, now).map_err(Error::internal)?,
            refresh_token,
            expires_in: self.tokens.lifetime(),
            company_user: identity.company_user,
        })
    }

    /// Starts a new token family for a customer token.
    async fn start(&self, identity: Identity) -> Result<Issued, Error> {
        let now = self.clock.now();
        let (refresh_token, row) = self.new_refresh_token(&identity, now)?;
        let first = self.store.insert(row).await?;
        self.within_cap(identity.customer_id, first, now).await?;
        self.issued(&identity, refresh_token, now)
    }

    /// Records the session of `customer` that the token `first` starts, and revokes the
    /// customer's oldest session when this one is beyond the cap (`session_cap`).
    async fn within_cap(&self, customer: i32, first: i64, now: i64) -> Result<(), Error> {
        let Some(oldest) = self.session_cap.started(customer, first) else { return Ok(()) };
        self.revoke_descendants(oldest, now).await?;
        let revoked = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
            .filter(refresh_token::Column::Id.eq(oldest))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&*self.store.writer().await?)
            .await?;
        tracing::info!(
            target: "glue_auth::audit",
            event = "session_cap_revoked",
            customer_id = customer,
            first_token = oldest,
            first_still_live = revoked.rows_affected,
            "a session beyond the cap: the customer's oldest is revoked"
        );
        Ok(())
    }

    /// `POST /access-tokens`: checks the password (Argon2id, on the checking threads, in the
    /// client's turn, against a dummy hash for unknown e-mails) within the login blocking:
    /// the attempt is counted before the check (see `throttle`).
    pub async fn login(
        &self,
        db: &Reader,
        credentials: Credentials,
        client: Option<ClientKey>,
    ) -> Result<Issued, Error> {
        let Credentials { username, password } = credentials;
        let email = normalize_email(&username);
        let LoginStart { audit, ticket, now, subjects } =
            self.begin_login("email", &email, client)?;
        let email_subject = subjects[0].clone();
        let lookup = (email_subject.as_str(), subjects.get(1).map(String::as_str));
        let (blocked, found) = login_lookup(db.connection(), &email, lookup, now).await?;
        if blocked {
            return Err(self.blocked(&audit));
        }
        let stored = found.as_ref().and_then(|c| c.password_hash.clone());
        // A bcrypt hash (from Spryker) is replaced by Argon2id once its password is known.
        let upgrade = match stored.as_deref().and_then(password::bcrypt_cost) {
            Some(cost) => {
                self.passwords.raise_legacy_cost(cost);
                Some((password.clone(), stored.clone().unwrap_or_default()))
            }
            None => None,
        };
        let (matches, attempt) =
            self.counted_check(ticket, &subjects, password, stored, now, &audit).await?;
        match found {
            Some(customer) if matches && customer.is_active => {
                attempt.settle(Outcome::Succeeded { email: &email_subject }).await?;
                tracing::info!(
                    target: "glue_auth::audit",
                    event = "login_succeeded",
                    customer = %customer.customer_reference,
                    client = %audit.client(),
                    email = %audit.email,
                    "login"
                );
                if let Some((password, old)) = upgrade {
                    self.upgrade_hash(customer.id, &customer.customer_reference, password, old)
                        .await?;
                }
                self.start(Identity {
                    customer_id: customer.id,
                    customer_reference: customer.customer_reference,
                    company_user: customer.company_user,
                    kind: TokenKind::Customer,
                })
                .await
            }
            _ => {
                self.failed_login(attempt, &audit, "login_failed").await?;
                Err(Error::AuthenticationFailed)
            }
        }
    }

    /// The start of a login of `name` (a normalized e-mail or username) whose attempts count
    /// against `<kind>:<name>` and the client's address: a place in the check queue first,
    /// so that a login refused for a full queue costs no read.
    fn begin_login(
        &self,
        kind: &str,
        name: &str,
        client: Option<ClientKey>,
    ) -> Result<LoginStart, Error> {
        let audit = Audit { client, email: self.audit.email_key(name) };
        let ticket =
            self.passwords.admit(client).map_err(|refused| queue_error(refused, &audit))?;
        let subjects = [Some(format!("{kind}:{name}")), client.map(|c| format!("ip:{c}"))]
            .into_iter()
            .flatten()
            .collect();
        Ok(LoginStart { audit, ticket, now: self.clock.now(), subjects })
    }

    /// Settles a failed login's attempt and logs it (`event`, repeats folded); the error is
    /// the caller's to give.
    async fn failed_login(
        &self,
        attempt: Attempt<'_>,
        audit: &Audit,
        event: &'static str,
    ) -> Result<(), Error> {
        attempt.settle(Outcome::Failed).await?;
        self.audit.repeated(event, audit, |left_out| {
            tracing::info!(
                target: "glue_auth::audit",
                event,
                client = %audit.client(),
                email = %audit.email,
                left_out,
                "login failed"
            );
        });
        Ok(())
    }

    /// Counts an attempt against `subjects` (login blocking, `throttle`) and checks
    /// `password` against `stored` in `ticket`'s turn: whether it matches, and the attempt,
    /// for the caller to settle with the outcome.
    async fn counted_check(
        &self,
        ticket: password::Ticket,
        subjects: &[String],
        password: Password,
        stored: Option<String>,
        now: i64,
        audit: &Audit,
    ) -> Result<(bool, Attempt<'_>), Error> {
        let counted =
            match throttle::reserve(&*self.store.counters().await?, subjects, now, self.throttle)
                .await?
            {
                Ok(counted) => counted,
                Err(NotCounted::Blocked) => return Err(self.blocked(audit)),
                Err(NotCounted::Busy) => return Err(Error::LoginsWaitingFromClient),
            };
        let attempt = Attempt { sessions: self, counted: Some(counted), now };
        match ticket.check(password, stored).await {
            Ok(matches) => Ok((matches, attempt)),
            Err(refused) => {
                attempt.settle(Outcome::NotChecked).await?;
                Err(queue_error(refused, audit))
            }
        }
    }

    /// Replaces the bcrypt hash `old` of `customer_id` with an Argon2id one of `password`
    /// (just verified), unless the hash changed meanwhile (a password change wins).
    async fn upgrade_hash(
        &self,
        customer_id: i32,
        reference: &str,
        password: Password,
        old: String,
    ) -> Result<(), Error> {
        let phc = passwords::hash(password).await?;
        let upgraded = customer::Entity::update_many()
            .col_expr(customer::Column::PasswordHash, Expr::value(phc))
            .filter(customer::Column::Id.eq(customer_id))
            .filter(customer::Column::PasswordHash.eq(old))
            .exec(&*self.store.writer().await?)
            .await?;
        tracing::info!(
            target: "glue_auth::audit",
            event = "password_hash_upgraded",
            customer = %reference,
            upgraded = upgraded.rows_affected,
            "a bcrypt password hash was replaced by Argon2id at login"
        );
        Ok(())
    }

    /// Makes every password check spend a bcrypt check of `highest` too, the highest cost
    /// of the bcrypt hashes a scan found (`None`: there are none left, Argon2id alone). See
    /// `auth::password::check`.
    pub fn legacy_hashes_found(&self, highest: Option<u32>) {
        self.passwords.set_legacy_cost(highest.unwrap_or(0));
    }

    /// The answer to a login whose e-mail or address is blocked, logged.
    fn blocked(&self, audit: &Audit) -> Error {
        self.audit.repeated("login_blocked", audit, |left_out| {
            tracing::warn!(
                target: "glue_auth::audit",
                event = "login_blocked",
                client = %audit.client(),
                email = %audit.email,
                left_out,
                "login blocked"
            );
        });
        Error::LoginBlocked
    }

    /// `POST /refresh-tokens`: rotates the presented token. A token already rotated is
    /// refused; past the grace window it is a reuse, and its whole family is revoked. Of concurrent refreshes with one token at most one
    /// wins, by a conditional update in the database (so across instances too).
    pub async fn refresh(&self, db: &Reader, presented: &str) -> Result<Issued, Error> {
        let now = self.clock.now();
        let minted = mint()?;
        let next = Successor {
            token_hash: minted.stored,
            client_id: self.client_id.clone(),
            issued_at: now,
            expires_at: now.saturating_add(self.refresh_ttl),
        };
        let token = match self.store.refresh(stored_form(presented), next).await? {
            Refreshed::Rotated(token) => token,
            Refreshed::Refused(token) => {
                if let (Some(rotated_at), Some(_)) = (token.revoked_at, token.rotated_into_id) {
                    self.reused(&token, now.saturating_sub(rotated_at)).await?;
                }
                return Err(Error::RefreshFailed);
            }
            // No customer's token: an agent's, or none at all.
            Refreshed::Unknown => {
                return self.refresh_agent(db, presented).await?.ok_or(Error::RefreshFailed);
            }
            // Another refresh with the same token won the race.
            Refreshed::Lost => return Err(Error::RefreshFailed),
        };
        // A company-user token was rotated only while its membership is usable.
        let identity = Identity {
            kind: token.kind(),
            customer_id: token.customer_id,
            customer_reference: token.customer_reference,
            company_user: token.member,
        };
        tracing::info!(
            target: "glue_auth::audit",
            event = "refresh",
            customer = %identity.customer_reference,
            "refresh token rotated"
        );
        self.issued(&identity, minted.token, now)
    }

    /// A rotated token presented again, `since` seconds after its rotation: within the grace
    /// window a request sent twice or a second tab, which revokes nothing (the winner's new
    /// tokens stay valid); later a reuse, which revokes the family (docs/wire-contract.md §2.3).
    async fn reused(&self, token: &Presented, since: i64) -> Result<(), Error> {
        if since < self.refresh_reuse_grace {
            tracing::info!(
                target: "glue_auth::audit",
                event = "refresh_repeated",
                family = %token.family_id,
                since,
                "a refresh token was presented again within the grace window: nothing revoked"
            );
            return Ok(());
        }
        self.revoke_descendants(token.id, self.clock.now()).await?;
        tracing::warn!(
            target: "glue_auth::audit",
            event = "refresh_reuse_detected",
            family = %token.family_id,
            since,
            "a rotated refresh token was presented again: its family is revoked"
        );
        Ok(())
    }

    /// Revokes every live token of the family of `reused`, a rotated token presented again:
    /// they all descend from it, so the chain of successors is followed from it (by primary
    /// key; nothing indexes tokens by family or customer).
    async fn revoke_descendants(&self, reused: i64, now: i64) -> Result<(), Error> {
        let writer = self.store.writer().await?;
        let stmt = Statement::from_sql_and_values(
            writer.get_database_backend(),
            REVOKE_DESCENDANTS,
            [reused.into(), now.into()],
        );
        writer.execute_raw(stmt).await?;
        Ok(())
    }

    /// `DELETE /refresh-tokens/{refreshToken}`: revokes it if it is the caller's customer's;
    /// anything else is left alone, silently.
    pub async fn revoke(&self, customer_id: i32, presented: &str) -> Result<(), Error> {
        self.revoke_token(Some(customer_id), presented).await
    }

    /// `POST /revoke` (RFC 7009): revokes the refresh token `presented`, whoever's it is:
    /// holding it is what lets a client end it. Unknown and spent tokens change nothing.
    pub async fn revoke_held(&self, presented: &str) -> Result<(), Error> {
        self.revoke_token(None, presented).await?;
        self.revoke_agent_token(presented).await
    }

    /// Revokes the live refresh token `presented`, if it is `customer_id`'s (when given).
    async fn revoke_token(&self, customer_id: Option<i32>, presented: &str) -> Result<(), Error> {
        let revoked = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(self.clock.now()))
            .filter(refresh_token::Column::TokenHash.eq(stored_form(presented)))
            .filter(
                sea_orm::Condition::all()
                    .add_option(customer_id.map(|id| refresh_token::Column::CustomerId.eq(id))),
            )
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&*self.store.writer().await?)
            .await?;
        tracing::info!(target: "glue_auth::audit", event = "revoke", count = revoked.rows_affected, "refresh token revoked");
        Ok(())
    }

    /// `DELETE /refresh-tokens/mine`: revokes every live refresh token of the customer,
    /// including those issued for its company users.
    /// Every token issued so far has an id at most the highest one, and later ones a higher
    /// id: recording that id on the customer revokes the first and none of the others, in one
    /// row (nothing indexes tokens by customer). A rotation checks it where it claims the
    /// token (see `token_store`).
    ///
    /// On PostgreSQL the customer's row is locked first: a group of rotations that read the
    /// mark before holds that row until it commits, so the highest id is read after their
    /// new tokens are in. (On SQLite nothing else writes meanwhile: writes take turns, see
    /// `TokenStore::writer`.)
    pub async fn revoke_all(&self, customer_id: i32) -> Result<(), Error> {
        let writer = self.store.writer().await?;
        let txn = writer.begin().await?;
        let revoked = revoke_all_in(&txn, customer_id).await?;
        txn.commit().await?;
        tracing::info!(target: "glue_auth::audit", event = "revoke_all", customers = revoked, "refresh tokens revoked");
        Ok(())
    }

    /// Starts a company-user session for the caller's membership `uuid` (docs/wire-contract.md
    /// §3.2), if that membership is the caller's customer's and usable: the token store checks it
    /// in the transaction that stores the refresh token (one round trip for both).
    pub async fn company_user_session(
        &self,
        caller: &Identity,
        uuid: Uuid,
    ) -> Result<Issued, Error> {
        let now = self.clock.now();
        let identity = Identity {
            customer_id: caller.customer_id,
            customer_reference: caller.customer_reference.clone(),
            company_user: Some(uuid),
            kind: TokenKind::CompanyUser,
        };
        let (refresh_token, row) = self.new_refresh_token(&identity, now)?;
        let Some(first) = self.store.insert_for_member(uuid, row).await? else {
            return Err(Error::CompanyUserAuthenticationFailed);
        };
        self.within_cap(identity.customer_id, first, now).await?;
        let issued = self.issued(&identity, refresh_token, now)?;
        tracing::info!(
            target: "glue_auth::audit",
            event = "company_user_token_issued",
            customer = %caller.customer_reference,
            company_user = %uuid,
            "company-user token issued"
        );
        Ok(issued)
    }
}

/// [`Sessions::revoke_all`] inside the writer's transaction `txn`: locks the customer's row
/// (PostgreSQL) and marks every token issued so far as revoked; how many customers it marked.
pub(crate) async fn revoke_all_in(
    txn: &impl ConnectionTrait,
    customer_id: i32,
) -> Result<u64, DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        customer::Entity::find_by_id(customer_id)
            .select_only()
            .column(customer::Column::Id)
            .lock_exclusive()
            .into_tuple::<i32>()
            .one(txn)
            .await?;
    }
    let highest = Query::select()
        .expr(Expr::col(refresh_token::Column::Id).max())
        .from(refresh_token::Entity)
        .to_owned();
    let revoked = customer::Entity::update_many()
        .col_expr(
            customer::Column::RevokedRefreshTokensThrough,
            Expr::SubQuery(None, Box::new(highest.into())),
        )
        .filter(customer::Column::Id.eq(customer_id))
        .exec(txn)
        .await?;
    Ok(revoked.rows_affected)
}

/// The highest bcrypt cost among the customers' password hashes, if any has one (a scan of
/// the customers: run at start-up and now and then, not per login).
pub async fn legacy_hash_cost(db: &Reader) -> Result<Option<u32>, Error> {
    // `$2y$12$…`: the cost is the two digits after the prefix.
    let highest = customer::Entity::find()
        .select_only()
        .expr(Expr::cust("max(substr(password_hash, 5, 2))"))
        .filter(customer::Column::PasswordHash.like("$2_$%"))
        .into_tuple::<Option<String>>()
        .one(db.connection())
        .await?
        .flatten();
    Ok(highest.and_then(|cost| cost.parse().ok()))
}

/// What a purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: u64,
    pub login_counters: u64,
}

impl Sessions {
    /// Deletes expired refresh tokens ([`purge_expired`]) and spent login counters
    /// (`throttle::purge`).
    pub async fn purge(&self) -> Result<Purged, Error> {
        let now = self.clock.now();
        let refresh_tokens = purge_expired(&*self.store.writer().await?, now).await?;
        let login_counters = throttle::purge(&*self.store.writer().await?, now, self.purge).await?;
        Ok(Purged { refresh_tokens, login_counters })
    }
}

/// Deletes refresh tokens that expired before `now`; live tokens are never touched (revoked
/// but unexpired ones are kept too: reuse detection needs them).
pub async fn purge_expired(db: &impl ConnectionTrait, now: i64) -> Result<u64, Error> {
    let deleted = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sql::tests::assert_same;

    #[test]
    fn the_cached_login_statement_matches_a_fresh_rendering() {
        let (email, subjects, now) = ("a@b.c", ["email:a@b.c", "ip:10.0.0.1"], 1_700_000_000);
        let values = [subjects[0].into(), subjects[1].into(), now.into(), email.into()];
        assert_same(&LOGIN, &values, |b| login_query(b, email, subjects, now));
    }
}
