//! The usable memberships of recent customers, for `GET /company-users/mine`, so that a
//! listing costs no database round trip. Kept correct by the directory's version, never
//! older than `max_age`, never filled late: `docs/design/membership-cache.md`.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak},
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DbErr, Statement};

use super::company::CompanyUser;
use crate::generations::Generations;

/// A customer's usable memberships as read, with their rendering once made.
#[derive(Debug)]
pub struct Listing {
    pub users: Vec<CompanyUser>,
    /// A rendering of `users` and the key it was made for (the API's base URL).
    rendered: OnceLock<(String, Vec<u8>)>,
}

impl Listing {
    pub fn new(users: Vec<CompanyUser>) -> Self {
        Self { users, rendered: OnceLock::new() }
    }

    /// The rendering of the users for `key`: made by `render` the first time and kept,
    /// for as long as the listing is. Another key is rendered afresh each time (one
    /// deployment answers under one base URL).
    pub fn rendered(&self, key: &str, render: impl Fn() -> Vec<u8>) -> Cow<'_, [u8]> {
        let (kept_for, bytes) = self.rendered.get_or_init(|| (key.to_owned(), render()));
        if kept_for == key { Cow::Borrowed(bytes) } else { Cow::Owned(render()) }
    }
}

#[derive(Debug)]
struct State {
    /// The version last read, and when that read began.
    version: Option<(i64, Instant)>,
    /// Raised by every emptying; a fill that began under another epoch is dropped.
    epoch: u64,
    listings: Generations<i32, Arc<Listing>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MembershipCache {
    max_age: Duration,
    state: Mutex<State>,
}

impl MembershipCache {
    /// A cache of `capacity` customers' listings, each at most `max_age` behind the
    /// database; a zero for either turns it off.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        let capacity = if max_age.is_zero() { 0 } else { capacity };
        Self {
            max_age,
            state: Mutex::new(State {
                version: None,
                epoch: 0,
                listings: Generations::new(capacity),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is one call on the state: it stays consistent after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn enabled(&self) -> bool {
        self.lock().listings.enabled()
    }

    /// How often [`MembershipCache::poll`] should run: twice per `max_age`.
    pub fn poll_interval(&self) -> Duration {
        self.max_age / 2
    }

    /// Whether the version was confirmed recently enough to serve entries; the epoch to
    /// fill under if so.
    fn fresh_epoch(&self, state: &State, now: Instant) -> Option<u64> {
        let (_, read_at) = state.version?;
        (now.duration_since(read_at) < self.max_age).then_some(state.epoch)
    }

    /// The customer's usable memberships, the default one first (see
    /// [`super::membership::usable_memberships`]).
    pub async fn usable_memberships(
        &self,
        db: &impl ConnectionTrait,
        customer_id: i32,
    ) -> Result<Arc<Listing>, DbErr> {
        let epoch = {
            let mut state = self.lock();
            let epoch = self.fresh_epoch(&state, Instant::now());
            if epoch.is_some()
                && let Some(listing) = state.listings.get(customer_id)
            {
                return Ok(listing);
            }
            epoch
        };
        let users = super::membership::usable_memberships(db, customer_id).await?;
        let listing = Arc::new(Listing::new(users.into_iter().map(Into::into).collect()));
        if let Some(epoch) = epoch {
            let mut state = self.lock();
            if state.epoch == epoch {
                state.listings.insert(customer_id, listing.clone());
            }
        }
        Ok(listing)
    }

    /// Reads the directory's version; empties the cache if it moved.
    pub async fn poll(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let started = Instant::now();
        let version = directory_version(db).await?;
        let mut state = self.lock();
        if state.version.map(|(known, _)| known) != Some(version) {
            state.listings.clear();
            state.epoch += 1;
        }
        state.version = Some((version, started));
        Ok(())
    }

    /// Customers whose listing is held (tests and figures).
    pub fn len(&self) -> usize {
        self.lock().listings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn directory_version(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT version FROM directory_version WHERE id = 1",
    );
    db.query_one_raw(stmt)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the directory_version row".into()))?
        .try_get_by_index(0)
}

/// Polls for as long as the cache is in use. A failed read is retried at the next tick
/// (entries stop being served once `max_age` passes without a read); the first failure and
/// the recovery are logged, not every tick in between.
pub async fn poll_while_used(cache: Weak<MembershipCache>, db: super::Reader) {
    let Some(interval) = cache.upgrade().map(|c| c.poll_interval()) else { return };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        match cache.poll(db.connection()).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the directory's version is read again: listings are cached");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(
                    %error,
                    "reading the directory's version failed: listings come from the database \
                     until it is read again"
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

    async fn directory() -> DatabaseConnection {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        for sql in [
            "CREATE TABLE directory_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO directory_version VALUES (1, 0)",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        db
    }

    fn listing(id: i32) -> Arc<Listing> {
        Arc::new(Listing::new(vec![CompanyUser {
            id,
            uuid: uuid::Uuid::new_v4(),
            customer_id: id,
            company_id: 1,
            business_unit_id: None,
            is_active: true,
            is_default: true,
        }]))
    }

    #[test]
    fn a_listing_is_rendered_once_for_its_key() {
        let listing = listing(1);
        let renders = std::sync::atomic::AtomicUsize::new(0);
        let render = || {
            renders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b"[1]".to_vec()
        };
        assert_eq!(&*listing.rendered("http://a", render), b"[1]");
        assert_eq!(&*listing.rendered("http://a", render), b"[1]");
        assert_eq!(renders.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(matches!(listing.rendered("http://b", render), Cow::Owned(_)));
        assert_eq!(renders.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn entries_are_served_only_under_a_fresh_unchanged_version() {
        let db = directory().await;
        let cache = MembershipCache::new(8, Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(cache.fresh_epoch(&cache.lock(), now), None, "nothing before the first read");
        cache.poll(&db).await.unwrap();
        let epoch = cache.fresh_epoch(&cache.lock(), Instant::now()).unwrap();
        cache.lock().listings.insert(1, listing(1));
        // The same version again keeps the entries and the epoch.
        cache.poll(&db).await.unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.fresh_epoch(&cache.lock(), Instant::now()), Some(epoch));
        // A moved version empties the cache and starts a new epoch.
        db.execute_unprepared("UPDATE directory_version SET version = 7").await.unwrap();
        cache.poll(&db).await.unwrap();
        assert!(cache.is_empty());
        assert_eq!(cache.fresh_epoch(&cache.lock(), Instant::now()), Some(epoch + 1));
        // Past `max_age` since the last read began, nothing is served.
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(cache.fresh_epoch(&cache.lock(), later), None);
    }

    #[tokio::test]
    async fn a_failed_read_changes_nothing_and_zero_turns_the_cache_off() {
        let db = directory().await;
        let cache = MembershipCache::new(8, Duration::from_secs(60));
        cache.poll(&db).await.unwrap();
        cache.lock().listings.insert(1, listing(1));
        db.execute_unprepared("DROP TABLE directory_version").await.unwrap();
        assert!(cache.poll(&db).await.is_err());
        assert_eq!(cache.len(), 1);
        for off in [
            MembershipCache::new(0, Duration::from_secs(1)),
            MembershipCache::new(8, Duration::ZERO),
        ] {
            assert!(!off.enabled());
        }
    }
}
