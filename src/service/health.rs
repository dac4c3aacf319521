//! Is the database there?

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::error::Error;

/// Runs the cheapest statement the database can answer.
pub async fn ping(db: &DatabaseConnection) -> Result<(), Error> {
    db.execute_unprepared("SELECT 1").await?;
    Ok(())
}
