//! Start-up: the application state, the bound listener and the server. Tests build the same
//! `App` on port 0 and talk to it over a real socket.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};
use sea_orm::DatabaseConnection;

use crate::config::Config;

/// What every request handler may use.
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Config,
}

/// A service bound to its address, ready to run.
pub struct App {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    state: Arc<AppState>,
}

impl App {
    /// Binds `config.listen` (port 0 picks a free port).
    pub async fn build(config: Config, db: DatabaseConnection) -> io::Result<Self> {
        let acceptor = TcpListener::bind(config.listen).into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .ok_or_else(|| io::Error::other("the listener has no socket address"))?;
        Ok(Self { acceptor, addr, state: Arc::new(AppState { db, config }) })
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (30 s at most).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let endpoint = crate::api::endpoint(self.state);
        Server::new_with_acceptor(self.acceptor)
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
