//! Sales agents' own sessions (docs/wire-contract.md §3.12): `POST /agent-access-tokens` logs
//! an agent in under the same blocking, check queue and dummy-hash rules as a customer login
//! (its attempts count against `agent:<username>` and the client address), and its refresh
//! tokens rotate under the same rules as a customer's (§2.3): single use, a reuse past the
//! grace window revokes the family, at most one of concurrent refreshes wins.
//!
//! Agents are few and refresh rarely, so their refresh tokens have a table of their own and
//! a plain transaction per refresh, not the token store's group commit.

use entity::{agent, agent_refresh_token};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use super::{Credentials, Issued, LoginStart, Sessions};
use crate::{
    auth::{
        refresh_token::{mint, stored_form},
        tokens::AgentIdentity,
    },
    client_address::ClientKey,
    error::Error,
    service::{
        Reader,
        directory::find_agent,
        throttle::{self, Outcome},
        validate::normalize_email,
    },
};

/// What a presented agent refresh token turned out to be.
enum AgentRefresh {
    /// Rotated: the agent, and the successor's secret.
    Rotated(AgentIdentity, String),
    /// Not rotatable (revoked, expired, its agent inactive), or another refresh won.
    Refused,
}

impl Sessions {
    /// `POST /agent-access-tokens`: an agent's username and password for an agent token.
    /// Wrong password, unknown username and inactive agent are one answer (401/4101).
    pub async fn agent_login(
        &self,
        db: &Reader,
        credentials: Credentials,
        client: Option<ClientKey>,
    ) -> Result<Issued, Error> {
        let Credentials { username, password } = credentials;
        let name = normalize_email(&username);
        let LoginStart { audit, ticket, now, subjects } =
            self.begin_login("agent", &name, client)?;
        let agent_subject = subjects[0].clone();
        let second = subjects.get(1).unwrap_or(&agent_subject);
        let (blocked, column) = throttle::blocked_column([&agent_subject, second], now);
        let query = Query::select().expr_as(blocked, column).to_owned();
        let connection = db.connection();
        let blocked: bool = match connection.query_one(&query).await? {
            Some(row) => row.try_get("", column)?,
            None => false,
        };
        if blocked {
            return Err(self.blocked(&audit));
        }
        let found = find_agent(connection, &name).await?;
        let stored = found.as_ref().and_then(|a| a.password_hash.clone());
        let (matches, attempt) =
            self.counted_check(ticket, &subjects, password, stored, now, &audit).await?;
        match found {
            Some(agent) if matches && agent.is_active => {
                attempt.settle(Outcome::Succeeded { email: &agent_subject }).await?;
                tracing::info!(
                    target: "glue_auth::audit",
                    event = "agent_login_succeeded",
                    agent = agent.id,
                    client = %audit.client(),
                    "agent login"
                );
                self.start_agent(AgentIdentity { agent_id: agent.id }, now).await
            }
            _ => {
                self.failed_login(attempt, &audit, "agent_login_failed").await?;
                Err(Error::AgentAuthenticationFailed)
            }
        }
    }

    /// A new agent session: the first refresh token of a new family, stored, and the tokens.
    async fn start_agent(&self, agent: AgentIdentity, now: i64) -> Result<Issued, Error> {
        let minted = mint()?;
        agent_refresh_token::ActiveModel {
            token_hash: Set(minted.stored),
            family_id: Set(Uuid::new_v4()),
            agent_id: Set(agent.agent_id),
            client_id: Set(self.client_id.clone()),
            issued_at: Set(now),
            expires_at: Set(now.saturating_add(self.refresh_ttl)),
            ..Default::default()
        }
        .insert(&*self.store.writer().await?)
        .await?;
        self.agent_issued(agent, minted.token, now)
    }

    fn agent_issued(
        &self,
        agent: AgentIdentity,
        refresh_token: String,
        now: i64,
    ) -> Result<Issued, Error> {
        Ok(Issued {
            access_token: self.tokens.issue_agent(agent, now).map_err(Error::internal)?,
            refresh_token,
            expires_in: self.tokens.lifetime(),
            company_user: None,
        })
    }

    /// `POST /refresh-tokens` with a token that is no customer's: an agent's, rotated, or
    /// `None` when it is no agent's either.
    pub(super) async fn refresh_agent(
        &self,
        db: &Reader,
        presented: &str,
    ) -> Result<Option<Issued>, Error> {
        let stored = stored_form(presented);
        let by_hash = || {
            agent_refresh_token::Entity::find()
                .filter(agent_refresh_token::Column::TokenHash.eq(stored.clone()))
        };
        // A token that is nobody's (a guess, a typo) costs one read and no turn to write.
        if by_hash().one(db.connection()).await?.is_none() {
            return Ok(None);
        }
        let now = self.clock.now();
        let minted = mint()?;
        let writer = self.store.writer().await?;
        let txn = writer.begin().await?;
        let mut find = by_hash();
        if txn.get_database_backend() == DbBackend::Postgres {
            find = find.lock_exclusive();
        }
        let Some(old) = find.one(&txn).await? else { return Ok(None) };
        let owner = agent::Entity::find_by_id(old.agent_id).one(&txn).await?;
        let revoked_with_all = owner
            .as_ref()
            .and_then(|a| a.revoked_refresh_tokens_through)
            .is_some_and(|through| old.id <= through);
        let rotatable = old.revoked_at.is_none()
            && !revoked_with_all
            && old.expires_at > now
            && owner.as_ref().is_some_and(|a| a.is_active);
        let outcome = if rotatable {
            if self.rotate_agent(&txn, &old, minted.stored, now).await? {
                AgentRefresh::Rotated(AgentIdentity { agent_id: old.agent_id }, minted.token)
            } else {
                AgentRefresh::Refused
            }
        } else {
            if let (Some(rotated_at), Some(_)) = (old.revoked_at, old.rotated_into_id) {
                self.agent_reused(&txn, &old, now.saturating_sub(rotated_at), now).await?;
            }
            AgentRefresh::Refused
        };
        txn.commit().await?;
        match outcome {
            AgentRefresh::Rotated(agent, secret) => {
                tracing::info!(
                    target: "glue_auth::audit",
                    event = "agent_refresh",
                    agent = agent.agent_id,
                    "agent refresh token rotated"
                );
                self.agent_issued(agent, secret, now).map(Some)
            }
            AgentRefresh::Refused => Err(Error::RefreshFailed),
        }
    }

    /// Inserts the successor of `old` and claims `old` for it, if no other refresh did:
    /// `false` when one did (the successor is then deleted again).
    async fn rotate_agent(
        &self,
        txn: &impl ConnectionTrait,
        old: &agent_refresh_token::Model,
        token_hash: String,
        now: i64,
    ) -> Result<bool, Error> {
        let successor = agent_refresh_token::ActiveModel {
            token_hash: Set(token_hash),
            family_id: Set(old.family_id),
            agent_id: Set(old.agent_id),
            client_id: Set(self.client_id.clone()),
            issued_at: Set(now),
            expires_at: Set(now.saturating_add(self.refresh_ttl)),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let claimed = agent_refresh_token::Entity::update_many()
            .col_expr(agent_refresh_token::Column::RevokedAt, Expr::value(now))
            .col_expr(agent_refresh_token::Column::RotatedIntoId, Expr::value(successor.id))
            .filter(agent_refresh_token::Column::Id.eq(old.id))
            .filter(agent_refresh_token::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
        if claimed.rows_affected == 1 {
            return Ok(true);
        }
        agent_refresh_token::Entity::delete_by_id(successor.id).exec(txn).await?;
        Ok(false)
    }

    /// Revokes the live agent refresh token `presented`, if there is one (`POST /revoke`).
    pub(super) async fn revoke_agent_token(&self, presented: &str) -> Result<(), Error> {
        let revoked = agent_refresh_token::Entity::update_many()
            .col_expr(agent_refresh_token::Column::RevokedAt, Expr::value(self.clock.now()))
            .filter(agent_refresh_token::Column::TokenHash.eq(stored_form(presented)))
            .filter(agent_refresh_token::Column::RevokedAt.is_null())
            .exec(&*self.store.writer().await?)
            .await?;
        if revoked.rows_affected > 0 {
            tracing::info!(target: "glue_auth::audit", event = "agent_revoke", "agent refresh token revoked");
        }
        Ok(())
    }

    /// A rotated agent token presented again `since` seconds after its rotation: within the
    /// grace window nothing happens; later its whole family is revoked.
    async fn agent_reused(
        &self,
        txn: &impl ConnectionTrait,
        old: &agent_refresh_token::Model,
        since: i64,
        now: i64,
    ) -> Result<(), Error> {
        if since < self.refresh_reuse_grace {
            tracing::info!(
                target: "glue_auth::audit",
                event = "refresh_repeated",
                family = %old.family_id,
                since,
                "an agent refresh token was presented again within the grace window: nothing revoked"
            );
            return Ok(());
        }
        agent_refresh_token::Entity::update_many()
            .col_expr(agent_refresh_token::Column::RevokedAt, Expr::value(now))
            .filter(agent_refresh_token::Column::FamilyId.eq(old.family_id))
            .filter(agent_refresh_token::Column::RevokedAt.is_null())
            .exec(txn)
            .await?;
        tracing::warn!(
            target: "glue_auth::audit",
            event = "refresh_reuse_detected",
            family = %old.family_id,
            agent = old.agent_id,
            since,
            "a rotated agent refresh token was presented again: its family is revoked"
        );
        Ok(())
    }
}
