//! Start-up: the application state, the bound listener and the server. Tests build the same
//! `App` on port 0 and talk to it over a real socket.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use sea_orm::DatabaseConnection;

use crate::{
    api::AppState,
    clock::Clock,
    config::Config,
    listener::{LimitedAcceptor, Limits},
    service::{Reader, membership_cache, token_store::TokenStore},
};

pub use crate::error::BoxError;

/// A service bound to its address, ready to run.
pub struct App {
    acceptor: LimitedAcceptor,
    addr: SocketAddr,
    state: Arc<AppState>,
}

impl App {
    /// Binds `config.listen` (port 0 picks a free port).
    pub async fn build(config: Config, db: DatabaseConnection) -> Result<Self, BoxError> {
        Self::build_with_clock(config, db, Arc::default()).await
    }

    /// Like [`App::build`], with a clock the caller can move (tests).
    pub async fn build_with_clock(
        config: Config,
        db: DatabaseConnection,
        clock: Arc<Clock>,
    ) -> Result<Self, BoxError> {
        if config.password_min_length > config.password_max_length {
            return Err("--password-min-length is greater than --password-max-length".into());
        }
        let store = TokenStore::open(&db).await?;
        let state = Arc::new(AppState::new(config, Reader::new(db), store, clock)?);
        let acceptor = TcpListener::bind(state.config.listen).into_acceptor().await?;
        let config = &state.config;
        let limits = Limits {
            connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            per_address: usize::try_from(config.max_connections_per_address).unwrap_or(usize::MAX),
            trusted_proxies: state.trusted_proxies.clone(),
            header_timeout: Duration::from_secs(config.header_timeout),
        };
        let acceptor = LimitedAcceptor::new(acceptor, limits);
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .ok_or_else(|| io::Error::other("the listener has no socket address"))?;
        Ok(Self { acceptor, addr, state })
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (30 s at most).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        if self.state.config.purge_interval > 0 {
            tokio::spawn(purge_periodically(self.state.clone()));
        }
        tokio::spawn(watch_legacy_hashes(self.state.clone()));
        if self.state.memberships.enabled() {
            let cache = Arc::downgrade(&self.state.memberships);
            tokio::spawn(membership_cache::poll_while_used(cache, self.state.db.clone()));
        }
        let idle_timeout = Duration::from_secs(self.state.config.idle_timeout);
        let endpoint = crate::api::endpoint(self.state);
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(idle_timeout)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(Duration::from_secs(30)))
            .await
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Deletes expired refresh tokens and spent login counters every `purge_interval` seconds.
/// Looks for bcrypt password hashes (imported from Spryker) at start-up and every minute, so
/// that every login costs the same while any remain (`auth::password::check`): an import
/// may run beside the service.
async fn watch_legacy_hashes(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match crate::service::sessions::legacy_hash_cost(&state.db).await {
            Ok(highest) => state.sessions.legacy_hashes_found(highest),
            Err(e) => tracing::warn!(error = %e, "looking for bcrypt password hashes failed"),
        }
    }
}

async fn purge_periodically(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.purge_interval));
    loop {
        tick.tick().await;
        match state.sessions.purge().await {
            Ok(purged) if purged.refresh_tokens + purged.login_counters == 0 => {}
            Ok(purged) => tracing::info!(
                refresh_tokens = purged.refresh_tokens,
                login_counters = purged.login_counters,
                "expired refresh tokens and spent login counters purged"
            ),
            Err(e) => tracing::warn!(error = %e, "purging failed"),
        }
    }
}
