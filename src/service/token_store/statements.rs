//! The SQL of a group (`docs/design/token-store.md` §2): one statement for each read and
//! write of the group, rendered once for each size ([`SizedSql`]).

use entity::{customer, refresh_token};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Statement,
    StatementBuilder, Value,
    sea_query::{Expr, ExprTrait, JoinType, LockType, Order, Query},
};
use uuid::Uuid;

use super::{NewToken, decide::Claim};
use crate::service::{membership, sql::SizedSql};

/// The columns of a new token, in the order of [`token_values`].
const TOKEN_COLUMNS: [refresh_token::Column; 8] = [
    refresh_token::Column::TokenHash,
    refresh_token::Column::FamilyId,
    refresh_token::Column::CustomerId,
    refresh_token::Column::CompanyUserId,
    refresh_token::Column::Scopes,
    refresh_token::Column::ClientId,
    refresh_token::Column::IssuedAt,
    refresh_token::Column::ExpiresAt,
];

pub(super) fn token_values(new: &NewToken) -> [Value; 8] {
    [
        new.token_hash.clone().into(),
        new.family_id.into(),
        new.customer_id.into(),
        new.company_user_id.into(),
        new.scopes.into(),
        new.client_id.clone().into(),
        new.issued_at.into(),
        new.expires_at.into(),
    ]
}

fn sample_token() -> NewToken {
    NewToken {
        token_hash: String::new(),
        family_id: Uuid::nil(),
        customer_id: 0,
        company_user_id: Some(0),
        scopes: "",
        client_id: String::new(),
        issued_at: 0,
        expires_at: 0,
    }
}

/// The tokens stored as `hashes` that exist, as [`Presented`].
fn presented_query(backend: DbBackend, hashes: &[&str]) -> Statement {
    use refresh_token::Column as T;
    let owner = refresh_token::Entity::belongs_to(customer::Entity)
        .from(T::CustomerId)
        .to(customer::Column::Id)
        .into();
    refresh_token::Entity::find()
        .select_only()
        .columns([T::Id, T::TokenHash, T::FamilyId, T::CompanyUserId, T::ExpiresAt])
        .columns([T::RevokedAt, T::RotatedIntoId, T::CustomerId])
        .column(customer::Column::CustomerReference)
        .column_as(customer::Column::IsActive, "customer_active")
        .column(customer::Column::RevokedRefreshTokensThrough)
        .expr_as(
            Expr::case(
                Expr::col(T::CompanyUserId.as_column_ref()).is_null(),
                membership::default_uuid_of(backend, Expr::col(T::CustomerId.as_column_ref())),
            )
            .finally(membership::usable_uuid_by_id(
                Expr::col(T::CustomerId.as_column_ref()),
                Expr::col(T::CompanyUserId.as_column_ref()),
            )),
            "member",
        )
        .join(JoinType::InnerJoin, owner)
        .filter(T::TokenHash.is_in(hashes.iter().copied()))
        .build(backend)
}
pub(super) static PRESENTED: SizedSql =
    SizedSql::new(|backend, n| presented_query(backend, &vec![""; n]));

/// On PostgreSQL, which of `n` tokens are live (not revoked): their ids, locked.
///
/// The tokens found live are locked until the group commits (`FOR UPDATE`, in the order of
/// their ids, as every group takes them), and so are their customers' rows (`FOR SHARE`). A
/// rotation of one of them by another instance waits for the commit, then finds it revoked.
/// A "revoke all" locks the customer first: it waits for the commit, then sees the group's
/// new tokens; a group that comes after it waits for it, then reads the customer's new mark
/// (a locked row is read again as committed, with the join's condition).
fn live_query(olds: &[i64]) -> Statement {
    use customer::Column as C;
    use refresh_token::Column as T;
    let token = |column: T| Expr::col((refresh_token::Entity, column));
    let through = Expr::col((customer::Entity, C::RevokedRefreshTokensThrough));
    let select = Query::select()
        .column((refresh_token::Entity, T::Id))
        .from(refresh_token::Entity)
        .inner_join(
            customer::Entity,
            Expr::col((customer::Entity, C::Id)).equals((refresh_token::Entity, T::CustomerId)),
        )
        .and_where(token(T::Id).is_in(olds.iter().copied()))
        .and_where(token(T::RevokedAt).is_null())
        .and_where(through.clone().is_null().or(through.lt(token(T::Id))))
        .order_by((refresh_token::Entity, T::Id), Order::Asc)
        .lock_with_tables(LockType::Update, [refresh_token::Entity])
        .to_owned();
    let mut stmt = StatementBuilder::build(&select, &DbBackend::Postgres);
    stmt.sql.push_str(" FOR SHARE OF \"customer\"");
    stmt
}
pub(super) static LIVE: SizedSql = SizedSql::new(|_, n| live_query(&vec![0; n]));

/// Inserts `news`; gives each row's id with its hash (RETURNING gives rows in no set order).
fn insert_many_query(backend: DbBackend, news: &[&NewToken]) -> Statement {
    let mut insert = Query::insert();
    insert.into_table(refresh_token::Entity).columns(TOKEN_COLUMNS);
    for new in news {
        insert.values_panic(token_values(new).map(Expr::val));
    }
    insert.returning(
        Query::returning().columns([refresh_token::Column::Id, refresh_token::Column::TokenHash]),
    );
    StatementBuilder::build(&insert, &backend)
}
pub(super) static INSERT_MANY: SizedSql =
    SizedSql::new(|backend, n| insert_many_query(backend, &vec![&sample_token(); n]));

/// Revokes each claim's `old` (if still live) and links it to its successor.
fn claim_many_query(backend: DbBackend, claims: &[Claim]) -> Statement {
    use refresh_token::Column as T;
    let by_old = |then: fn(&Claim) -> i64, otherwise: T| {
        let mut cases = claims.iter();
        let first = cases.next().expect("at least one claim");
        let mut case = Expr::case(T::Id.eq(first.old), then(first));
        for claim in cases {
            case = case.case(T::Id.eq(claim.old), then(claim));
        }
        case.finally(Expr::col(otherwise.as_column_ref()))
    };
    refresh_token::Entity::update_many()
        .col_expr(T::RevokedAt, by_old(|c| c.now, T::RevokedAt).into())
        .col_expr(T::RotatedIntoId, by_old(|c| c.new, T::RotatedIntoId).into())
        .filter(T::Id.is_in(claims.iter().map(|c| c.old)))
        .filter(T::RevokedAt.is_null())
        .build(backend)
}
pub(super) static CLAIM_MANY: SizedSql = SizedSql::new(|backend, n| {
    claim_many_query(backend, &vec![Claim { old: 0, new: 0, now: 0 }; n])
});

pub(super) fn claim_many_values(claims: &[Claim]) -> Vec<Value> {
    let revoked = claims.iter().flat_map(|c| [c.old.into(), c.now.into()]);
    let linked = claims.iter().flat_map(|c| [c.old.into(), c.new.into()]);
    revoked.chain(linked).chain(claims.iter().map(|c| c.old.into())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sql::tests::assert_same_sized;

    #[test]
    fn on_postgres_the_live_tokens_and_their_customers_are_locked_in_order() {
        let sql = live_query(&[3, 1, 2]).sql;
        assert!(
            sql.ends_with(
                "ORDER BY \"refresh_token\".\"id\" ASC \
                 FOR UPDATE OF \"refresh_token\" FOR SHARE OF \"customer\""
            ),
            "{sql}"
        );
        // The customer's mark is a condition of the join, read again on a locked row.
        assert!(sql.contains("INNER JOIN \"customer\""), "{sql}");
    }

    #[test]
    fn cached_multi_row_statements_match_a_fresh_rendering() {
        let token = |n: i64| NewToken {
            token_hash: format!("hash {n}"),
            family_id: Uuid::new_v4(),
            customer_id: n as i32,
            company_user_id: (n % 2 == 0).then_some(n as i32),
            scopes: "company_user",
            client_id: "frontend".into(),
            issued_at: 100 + n,
            expires_at: 200 + n,
        };
        for rows in [1usize, 2, 8, 64] {
            let ids: Vec<i64> = (1..=rows as i64).collect();
            let values: Vec<Value> = ids.iter().map(|id| (*id).into()).collect();
            let locked = LIVE.bind(DbBackend::Postgres, rows, values.iter().cloned());
            assert_eq!(locked, live_query(&ids));

            let hashes: Vec<String> = ids.iter().map(|n| format!("hash {n}")).collect();
            let hashes: Vec<&str> = hashes.iter().map(String::as_str).collect();
            let values: Vec<Value> = hashes.iter().map(|h| (*h).into()).collect();
            assert_same_sized(&PRESENTED, rows, &values, |b| presented_query(b, &hashes));

            let news: Vec<NewToken> = ids.iter().map(|n| token(*n)).collect();
            let refs: Vec<&NewToken> = news.iter().collect();
            let values: Vec<Value> = news.iter().flat_map(token_values).collect();
            assert_same_sized(&INSERT_MANY, rows, &values, |b| insert_many_query(b, &refs));

            let claims: Vec<Claim> =
                ids.iter().map(|&id| Claim { old: id, new: id + 1000, now: id + 50 }).collect();
            assert_same_sized(&CLAIM_MANY, rows, &claim_many_values(&claims), |b| {
                claim_many_query(b, &claims)
            });
        }
    }
}
