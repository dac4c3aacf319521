//! Customers change their own password (docs/wire-contract.md §3.9). A new password ends
//! every session of the customer: all its refresh tokens are revoked in the transaction that
//! stores the new hash (access tokens run out as usual).

use entity::{customer, password_restore_key};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::{Sessions, queue_error, revoke_all_in};
use crate::{
    auth::{
        password::{self, Password},
        tokens::Identity,
    },
    client_address::ClientKey,
    error::{Error, Violation},
    service::{Reader, audit::Audit, throttle::Outcome},
};

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
        self.set_password(customer.id, phc).await?;
        tracing::info!(
            target: "glue_auth::audit",
            event = "password_changed",
            customer = %customer.customer_reference,
            client = %audit.client(),
            "password changed: every refresh token of the customer is revoked"
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

    /// Stores `phc` as the password of `customer_id`, spends its restore key and revokes
    /// all its refresh tokens, in one transaction of the writer.
    async fn set_password(&self, customer_id: i32, phc: String) -> Result<(), Error> {
        let writer = self.store.writer().await?;
        let txn = writer.begin().await?;
        // The row lock first on PostgreSQL (`revoke_all_in`), then the changes.
        revoke_all_in(&txn, customer_id).await?;
        customer::Entity::update(customer::ActiveModel {
            id: Set(customer_id),
            password_hash: Set(Some(phc)),
            updated_at: Set(self.clock.now()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        password_restore_key::Entity::delete_many()
            .filter(password_restore_key::Column::CustomerId.eq(customer_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Argon2id of a new password, off the async threads.
async fn hash(new_password: Password) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(Error::internal)?
        .map_err(|e| Error::internal(e.to_string()))
}
