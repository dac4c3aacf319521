//! Is the database there?

use sea_orm::ConnectionTrait;

use super::Reader;
use crate::error::Error;

/// Runs the cheapest statement the database can answer.
pub async fn ping(db: &Reader) -> Result<(), Error> {
    db.connection().execute_unprepared("SELECT 1").await?;
    Ok(())
}
