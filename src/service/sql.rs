//! Statements of the hot paths, rendered once per backend (`docs/design/hot-paths.md` §3):
//! each call only binds its own values, in order; constant conditions are written into the
//! SQL ([`equals_constant`]) and no hot query binds its LIMIT (see [`first`]). A unit test
//! beside each query compares the cached statement with a fresh rendering.

use std::sync::OnceLock;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryTrait, Select, Statement,
    Value,
    sea_query::{Expr, ExprTrait},
};

/// SQL rendered on first use, once per backend.
pub struct CachedSql {
    render: fn(DbBackend) -> Statement,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl CachedSql {
    /// `render` builds the statement with placeholder inputs; only its SQL is kept.
    pub const fn new(render: fn(DbBackend) -> Statement) -> Self {
        Self { render, sqlite: OnceLock::new(), postgres: OnceLock::new() }
    }

    /// The statement for `backend` with `values` bound, in the order of the placeholders.
    pub fn bind(&self, backend: DbBackend, values: impl IntoIterator<Item = Value>) -> Statement {
        let cell = match backend {
            DbBackend::Sqlite => &self.sqlite,
            _ => &self.postgres,
        };
        let sql = cell.get_or_init(|| (self.render)(backend).sql);
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

/// Statements over a number of rows (multi-row inserts, `IN` lists), rendered once per
/// backend and size. Only sizes that are powers of two up to [`SizedSql::MAX`] exist, so a
/// connection prepares at most a few of each and keeps them cached: [`SizedSql::chunks`]
/// splits any count into such sizes.
pub struct SizedSql {
    render: fn(DbBackend, usize) -> Statement,
    sqlite: [OnceLock<String>; SIZES],
    postgres: [OnceLock<String>; SIZES],
}

/// 1, 2, 4, … 512 rows.
const SIZES: usize = 10;

impl SizedSql {
    /// The most rows one statement takes.
    pub const MAX: usize = 1 << (SIZES - 1);

    /// `render(backend, n)` builds the statement for `n` rows with placeholder inputs.
    pub const fn new(render: fn(DbBackend, usize) -> Statement) -> Self {
        Self {
            render,
            sqlite: [const { OnceLock::new() }; SIZES],
            postgres: [const { OnceLock::new() }; SIZES],
        }
    }

    /// Sizes (largest first) that add up to `count`, each one this type renders.
    pub fn chunks(count: usize) -> impl Iterator<Item = usize> {
        let mut left = count;
        std::iter::from_fn(move || {
            let size = if left >= Self::MAX { Self::MAX } else { 1 << left.checked_ilog2()? };
            left -= size;
            Some(size)
        })
    }

    /// `items` cut into consecutive pieces of the sizes [`SizedSql::chunks`] gives.
    pub fn split<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
        let mut rest = items;
        Self::chunks(items.len()).map(move |size| {
            let (chunk, next) = rest.split_at(size);
            rest = next;
            chunk
        })
    }

    /// The statement for `rows` rows (a size [`SizedSql::chunks`] gives) with `values`
    /// bound, in the order of the placeholders.
    pub fn bind(
        &self,
        backend: DbBackend,
        rows: usize,
        values: impl IntoIterator<Item = Value>,
    ) -> Statement {
        assert!(rows.is_power_of_two() && rows <= Self::MAX, "no statement for {rows} rows");
        let cells = match backend {
            DbBackend::Sqlite => &self.sqlite,
            _ => &self.postgres,
        };
        let index = rows.ilog2() as usize;
        let sql = cells[index].get_or_init(|| (self.render)(backend, rows).sql);
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

/// The first row of `select`. sea-orm's `one()` adds `LIMIT ?` with 1 bound to it, and
/// SQLite 3.51 plans a statement again on every run whose LIMIT is a bound value: that
/// re-planning was a quarter of the CPU time of `POST /refresh-tokens`. Meant for lookups
/// by a unique key, where there is at most one row anyway.
pub async fn first<E: EntityTrait>(
    db: &impl ConnectionTrait,
    select: Select<E>,
) -> Result<Option<E::Model>, DbErr> {
    let stmt = select.build(db.get_database_backend());
    E::find().from_raw_sql(stmt).one(db).await
}

/// `column = value`, with the value written into the SQL rather than bound.
pub fn equals_constant<C: ColumnTrait>(column: C, value: impl Into<Value>) -> Expr {
    Expr::col(column.as_column_ref()).eq(Expr::Constant(value.into()))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Both backends: the cached statement with `values` bound equals `fresh`'s rendering.
    pub fn assert_same(
        cached: &CachedSql,
        values: &[Value],
        fresh: impl Fn(DbBackend) -> Statement,
    ) {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            // Twice: the first call renders, the second reads the cache.
            for _ in 0..2 {
                assert_eq!(cached.bind(backend, values.iter().cloned()), fresh(backend));
            }
        }
    }

    /// Like [`assert_same`], for `rows` rows.
    pub fn assert_same_sized(
        cached: &SizedSql,
        rows: usize,
        values: &[Value],
        fresh: impl Fn(DbBackend) -> Statement,
    ) {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for _ in 0..2 {
                assert_eq!(cached.bind(backend, rows, values.iter().cloned()), fresh(backend));
            }
        }
    }

    #[test]
    fn chunks_are_powers_of_two_that_add_up() {
        assert_eq!(SizedSql::chunks(0).count(), 0);
        assert_eq!(SizedSql::chunks(1).collect::<Vec<_>>(), [1]);
        assert_eq!(SizedSql::chunks(37).collect::<Vec<_>>(), [32, 4, 1]);
        assert_eq!(SizedSql::chunks(1300).collect::<Vec<_>>(), [512, 512, 256, 16, 4]);
        for count in 0..2000 {
            let sizes: Vec<usize> = SizedSql::chunks(count).collect();
            assert_eq!(sizes.iter().sum::<usize>(), count);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= SizedSql::MAX));
            let items: Vec<usize> = (0..count).collect();
            let pieces: Vec<&[usize]> = SizedSql::split(&items).collect();
            assert_eq!(pieces.iter().map(|p| p.len()).collect::<Vec<_>>(), sizes);
            assert_eq!(pieces.concat(), items);
        }
    }

    #[test]
    fn constants_are_written_into_the_sql() {
        use sea_orm::{EntityTrait, QueryFilter, QueryTrait};
        let stmt = entity::company::Entity::find()
            .filter(equals_constant(entity::company::Column::Status, "approved"))
            .build(DbBackend::Sqlite);
        assert!(stmt.sql.contains("'approved'"), "{}", stmt.sql);
        assert!(stmt.values.as_ref().is_none_or(|v| v.0.is_empty()), "{stmt:?}");
    }
}
