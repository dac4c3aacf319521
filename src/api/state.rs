//! What every handler may use: the state built once at start-up.

use std::{sync::Arc, time::Duration};

use crate::{
    auth::keys::KeySet,
    client_address::TrustedProxies,
    clock::Clock,
    config::Config,
    error::BoxError,
    mail::Mailer,
    service::{
        Reader, membership_cache::MembershipCache, sessions::Sessions, token_store::TokenStore,
    },
};

/// What every request handler may use.
pub struct AppState {
    /// The database, for reads: every write goes through `sessions`' token store.
    pub db: Reader,
    pub config: Config,
    pub sessions: Sessions,
    /// The listings of `GET /company-users/mine`.
    pub memberships: Arc<MembershipCache>,
    /// Whose forwarding header names the client.
    pub trusted_proxies: TrustedProxies,
}

impl AppState {
    /// Loads (or on first start creates) the signing keys and builds the state.
    pub fn new(
        config: Config,
        db: Reader,
        store: TokenStore,
        clock: Arc<Clock>,
    ) -> Result<Self, BoxError> {
        let keys = KeySet::load(&config.signing_keys, &config.data_dir)?;
        let mailer = Mailer::start(&config)?;
        let sessions = Sessions::new(&config, keys, clock, store, mailer)?;
        let memberships = Arc::new(MembershipCache::new(
            config.membership_cache,
            Duration::from_millis(config.membership_cache_max_age_ms),
        ));
        let trusted_proxies = config.trusted_proxies();
        Ok(Self { db, config, sessions, memberships, trusted_proxies })
    }
}
