//! The database as the endpoints see it: for reads only. Every write of the service goes
//! through the token store's writer (`docs/design/token-store.md`), which takes its turn
//! with the groups of token writes on SQLite; a write on another connection would meet
//! the busy handler, or read a snapshot the next group outdates.

use sea_orm::DatabaseConnection;

/// The database, for reads. Outside `service` it gives out no connection, so no handler,
/// extractor or middleware can write with it:
///
/// ```compile_fail
/// use sea_orm::{ConnectionTrait, DatabaseConnection};
/// async fn write(reader: &glue_auth::service::Reader) {
///     let db: &DatabaseConnection = reader.connection();
///     db.execute_unprepared("DELETE FROM refresh_token").await.ok();
/// }
/// ```
///
/// The service functions that read take it and query through [`Reader::connection`]; those
/// that write take their turn with `TokenStore::writer` (or `counters`) instead.
#[derive(Debug, Clone)]
pub struct Reader(DatabaseConnection);

impl Reader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db)
    }

    /// The connection the service's queries read on.
    pub(in crate::service) fn connection(&self) -> &DatabaseConnection {
        &self.0
    }
}
