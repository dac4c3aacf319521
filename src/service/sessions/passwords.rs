//! Customers change their own password (docs/wire-contract.md §3.9), or, having forgotten
//! it, ask for a restore key by mail and set a new one with it (§3.10). A new password ends
//! every session of the customer: all its refresh tokens are revoked in the transaction that
//! stores the new hash (access tokens run out as usual).

use std::sync::Arc;

use entity::{customer, password_restore_key};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::OnConflict,
};

use super::{Sessions, queue_error, revoke_all_in};
use crate::{
    auth::{
        password::{self, Password},
        refresh_token::{mint, stored_form},
        tokens::Identity,
    },
    client_address::ClientKey,
    clock::Clock,
    config::Config,
    error::{Error, Violation},
    mail::{Mail, Mailer},
    service::{
        Reader,
        audit::Audit,
        throttle::{self, Outcome},
        token_store::TokenStore,
        validate::normalize_email,
    },
};

/// The restore mail's text: a `Subject:` line, an empty line, the plain-text body
/// (`{name}`, `{email}`, `{link}`, `{minutes}` are filled in).
const RESTORE_MAIL: &str = include_str!("../../mail/password-restore.txt");

/// How restore keys are made and sent (`--password-reset-*`, `--smtp-url`).
pub(super) struct Restores {
    mailer: Mailer,
    /// The link, with `{key}` where the key goes.
    link: String,
    /// Seconds a key works.
    ttl: i64,
    /// Requests per e-mail and per client address.
    throttle: throttle::Policy,
}

impl Restores {
    pub(super) fn new(config: &Config, mailer: Mailer) -> Result<Self, String> {
        if !config.password_reset_url.contains("{key}") {
            return Err("--password-reset-url must contain {key}".into());
        }
        Ok(Self {
            mailer,
            link: config.password_reset_url.clone(),
            ttl: config.password_reset_ttl,
            throttle: throttle::Policy {
                attempts: config.password_reset_requests,
                window: config.password_reset_window,
                block: config.password_reset_window,
            },
        })
    }
}

/// `PATCH /customer-restore-password`: the key from the mail and the new password twice.
#[derive(Debug)]
pub struct PasswordRestore {
    pub restore_key: String,
    pub password: Password,
    pub confirm_password: Password,
}

/// `PATCH /customer-password/{customerReference}`: whose password, the current one, and the
/// new one twice.
#[derive(Debug)]
pub struct PasswordChange {
    pub customer_reference: String,
    pub password: Password,
    pub new_password: Password,
    pub confirm_password: Password,
}

impl Sessions {
    /// Changes the caller's password, checked in Glue's order: the policy on the new
    /// password and its confirmation (422/901), the reference (only the caller's own), that
    /// the two agree, then the current password, counted like a login attempt of the
    /// customer's e-mail and the client address (so a stolen access token cannot be used to
    /// guess passwords faster than logins can). Then the new hash is stored and every
    /// refresh token of the customer revoked, in one transaction; an outstanding restore
    /// key is spent too.
    pub async fn change_password(
        &self,
        db: &Reader,
        caller: &Identity,
        change: PasswordChange,
        client: Option<ClientKey>,
    ) -> Result<(), Error> {
        let PasswordChange { customer_reference, password, new_password, confirm_password } =
            change;
        self.new_password_allowed([
            ("newPassword", &new_password),
            ("confirmPassword", &confirm_password),
        ])?;
        if customer_reference != caller.customer_reference {
            return Err(Error::CustomerUnauthorized);
        }
        if new_password.expose() != confirm_password.expose() {
            return Err(Error::PasswordsDiffer { attribute: "newPassword" });
        }
        let customer = customer::Entity::find_by_id(caller.customer_id)
            .one(db.connection())
            .await?
            .ok_or(Error::CustomerNotFound)?;
        let email_subject = format!("email:{}", customer.email_normalized);
        let audit = Audit { client, email: self.audit.email_key(&customer.email_normalized) };
        let ticket =
            self.passwords.admit(client).map_err(|refused| queue_error(refused, &audit))?;
        let subjects: Vec<String> =
            [Some(email_subject.clone()), client.map(|c| format!("ip:{c}"))]
                .into_iter()
                .flatten()
                .collect();
        let now = self.clock.now();
        let (matches, attempt) = self
            .counted_check(ticket, &subjects, password, customer.password_hash.clone(), now, &audit)
            .await?;
        if !(matches && customer.is_active) {
            attempt.settle(Outcome::Failed).await?;
            tracing::info!(
                target: "glue_auth::audit",
                event = "password_change_failed",
                customer = %customer.customer_reference,
                client = %audit.client(),
                "password change refused: the current password is wrong"
            );
            return Err(Error::WrongPassword);
        }
        attempt.settle(Outcome::Succeeded { email: &email_subject }).await?;
        let phc = hash(new_password).await?;
        self.set_password(customer.id, phc, None).await?;
        tracing::info!(
            target: "glue_auth::audit",
            event = "password_changed",
            customer = %customer.customer_reference,
            client = %audit.client(),
            "password changed: every refresh token of the customer is revoked"
        );
        Ok(())
    }

    /// `POST /customer-forgotten-password`: counts the request against the e-mail and the
    /// client address (too many get `ResetRequestsLimited`), then answers at once. The rest
    /// happens after the answer, so that it is the same, and as fast, whether the e-mail is
    /// known: for an active customer, a new restore key replaces any old one and a mail
    /// with the link is queued.
    pub async fn forgotten_password(
        &self,
        db: &Reader,
        email: &str,
        client: Option<ClientKey>,
    ) -> Result<(), Error> {
        let email = normalize_email(email);
        let now = self.clock.now();
        let subjects: Vec<String> =
            [Some(format!("reset-email:{email}")), client.map(|c| format!("reset-ip:{c}"))]
                .into_iter()
                .flatten()
                .collect();
        let policy = self.restores.throttle;
        {
            let counters = self.store.counters().await?;
            match throttle::reserve(&*counters, &subjects, now, policy).await? {
                // Every request counts: settled as a "failure", the limit-th one blocks.
                Ok(counted) => {
                    throttle::settle(&*counters, &counted, Outcome::Failed, now, policy).await?;
                }
                Err(_) => return Err(Error::ResetRequestsLimited),
            }
        }
        let job = RestoreKeyJob {
            db: db.connection().clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            restores: self.restores.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = job.run(&email).await {
                tracing::warn!(error = %e, "a password restore key could not be made");
            }
        });
        Ok(())
    }

    /// `PATCH /customer-restore-password`: the policy (422/901) and the confirmation
    /// (422/406) first, then the key: unknown, used, replaced or expired keys, and keys of
    /// customers no longer active, all get `RestoreKeyInvalid`. The key is spent in the
    /// transaction that stores the new hash and revokes every refresh token of the
    /// customer, so of two restores with one key at most one succeeds.
    pub async fn restore_password(
        &self,
        db: &Reader,
        restore: PasswordRestore,
    ) -> Result<(), Error> {
        let PasswordRestore { restore_key, password: new_password, confirm_password } = restore;
        self.new_password_allowed([
            ("password", &new_password),
            ("confirmPassword", &confirm_password),
        ])?;
        if new_password.expose() != confirm_password.expose() {
            return Err(Error::PasswordsDiffer { attribute: "password" });
        }
        let stored = stored_form(&restore_key);
        let now = self.clock.now();
        let valid = password_restore_key::Entity::find()
            .filter(password_restore_key::Column::KeyHash.eq(&stored))
            .filter(password_restore_key::Column::ExpiresAt.gt(now))
            .find_also_related(customer::Entity)
            .one(db.connection())
            .await?;
        let Some((key, Some(customer))) = valid else { return Err(Error::RestoreKeyInvalid) };
        if !customer.is_active {
            return Err(Error::RestoreKeyInvalid);
        }
        let phc = hash(new_password).await?;
        if !self.set_password(key.customer_id, phc, Some(&stored)).await? {
            // Spent or replaced since it was read.
            return Err(Error::RestoreKeyInvalid);
        }
        tracing::info!(
            target: "glue_auth::audit",
            event = "password_restored",
            customer = %customer.customer_reference,
            "password restored with a restore key: every refresh token of the customer is revoked"
        );
        Ok(())
    }

    /// The policy's violations of the new passwords `given` (attribute, password), if any.
    fn new_password_allowed<const N: usize>(
        &self,
        given: [(&'static str, &Password); N],
    ) -> Result<(), Error> {
        let violations: Vec<Violation> = given
            .into_iter()
            .filter_map(|(attribute, password)| self.policy.violation(attribute, password.expose()))
            .collect();
        if violations.is_empty() { Ok(()) } else { Err(Error::Validation(violations)) }
    }

    /// Stores `phc` as the password of `customer_id` and revokes all its refresh tokens, in
    /// one transaction of the writer, and spends its restore key: with `key` (a stored
    /// form), only if that key is still the customer's and unexpired, else nothing is
    /// changed and the answer is `false`. The customer's row is locked first (on
    /// PostgreSQL, `revoke_all_in`), so a change and a restore of one customer cannot
    /// deadlock.
    async fn set_password(
        &self,
        customer_id: i32,
        phc: String,
        key: Option<&str>,
    ) -> Result<bool, Error> {
        let writer = self.store.writer().await?;
        let txn = writer.begin().await?;
        revoke_all_in(&txn, customer_id).await?;
        let mut spend = password_restore_key::Entity::delete_many()
            .filter(password_restore_key::Column::CustomerId.eq(customer_id));
        if let Some(key) = key {
            spend = spend
                .filter(password_restore_key::Column::KeyHash.eq(key))
                .filter(password_restore_key::Column::ExpiresAt.gt(self.clock.now()));
        }
        let spent = spend.exec(&txn).await?;
        if key.is_some() && spent.rows_affected != 1 {
            // Dropping the transaction rolls the revocation back.
            return Ok(false);
        }
        customer::Entity::update(customer::ActiveModel {
            id: Set(customer_id),
            password_hash: Set(Some(phc)),
            updated_at: Set(self.clock.now()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        txn.commit().await?;
        Ok(true)
    }
}

/// Argon2id of a new password, off the async threads.
pub(super) async fn hash(new_password: Password) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(Error::internal)?
        .map_err(|e| Error::internal(e.to_string()))
}

/// What making a restore key needs, owned: it runs after the answer.
struct RestoreKeyJob {
    db: DatabaseConnection,
    store: TokenStore,
    clock: Arc<Clock>,
    restores: Arc<Restores>,
}

impl RestoreKeyJob {
    /// For the active customer of `email` (normalized), if any: a new key in place of the
    /// old, and the mail with its link.
    async fn run(self, email: &str) -> Result<(), Error> {
        let Some(customer) = customer::Entity::find()
            .filter(customer::Column::EmailNormalized.eq(email))
            .filter(customer::Column::IsActive.eq(true))
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        let Ok(to) = customer.email.parse() else {
            tracing::warn!(customer = %customer.customer_reference, "the customer's e-mail cannot be mailed to");
            return Ok(());
        };
        let key = mint()?;
        let now = self.clock.now();
        let row = password_restore_key::ActiveModel {
            customer_id: Set(customer.id),
            key_hash: Set(key.stored),
            created_at: Set(now),
            expires_at: Set(now.saturating_add(self.restores.ttl)),
        };
        let replace = OnConflict::column(password_restore_key::Column::CustomerId)
            .update_columns([
                password_restore_key::Column::KeyHash,
                password_restore_key::Column::CreatedAt,
                password_restore_key::Column::ExpiresAt,
            ])
            .to_owned();
        password_restore_key::Entity::insert(row)
            .on_conflict(replace)
            .exec_without_returning(&*self.store.writer().await?)
            .await?;
        let name = format!("{} {}", customer.first_name, customer.last_name);
        let filled = RESTORE_MAIL
            .replace("{name}", name.trim())
            .replace("{email}", &customer.email)
            .replace("{minutes}", &(self.restores.ttl / 60).to_string())
            .replace("{link}", &self.restores.link.replace("{key}", &key.token));
        let (subject, text) = filled.split_once('\n').unwrap_or(("", &filled));
        let subject = subject.strip_prefix("Subject:").unwrap_or(subject).trim().to_owned();
        let text = text.strip_prefix('\n').unwrap_or(text);
        self.restores.mailer.send(Mail {
            to,
            subject,
            text: text.to_owned(),
            about: "password restore",
        });
        tracing::info!(
            target: "glue_auth::audit",
            event = "password_reset_requested",
            customer = %customer.customer_reference,
            "a password restore key was made and its mail queued"
        );
        Ok(())
    }
}
