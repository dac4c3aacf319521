//! The data model of docs/wire-contract.md §4: customers, companies and their units, addresses,
//! roles, company users, refresh tokens and login-attempt counters.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
#[expect(clippy::enum_variant_names, reason = "variants are the column names")]
enum Customer {
    Table,
    Id,
    CustomerReference,
    Email,
    EmailNormalized,
    PasswordHash,
    Salutation,
    FirstName,
    LastName,
    IsActive,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Company {
    Table,
    Id,
    Uuid,
    Name,
    Status,
    IsActive,
}

#[derive(DeriveIden)]
enum CompanyBusinessUnit {
    Table,
    Id,
    Uuid,
    CompanyId,
    Name,
    Email,
    Phone,
    ExternalUrl,
    Bic,
    Iban,
    DefaultBillingAddressId,
}

#[derive(DeriveIden)]
enum CompanyUnitAddress {
    Table,
    Id,
    Uuid,
    CompanyId,
    Address1,
    Address2,
    Address3,
    ZipCode,
    City,
    Phone,
    Iso2Code,
    Comment,
}

#[derive(DeriveIden)]
enum CompanyUnitAddressToBusinessUnit {
    Table,
    AddressId,
    BusinessUnitId,
}

#[derive(DeriveIden)]
enum CompanyRole {
    Table,
    Id,
    Uuid,
    CompanyId,
    Name,
    IsDefault,
}

#[derive(DeriveIden)]
enum CompanyRolePermission {
    Table,
    RoleId,
    PermissionKey,
}

#[derive(DeriveIden)]
enum CompanyUser {
    Table,
    Id,
    Uuid,
    CustomerId,
    CompanyId,
    BusinessUnitId,
    IsActive,
    IsDefault,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CompanyUserRole {
    Table,
    CompanyUserId,
    RoleId,
}

#[derive(DeriveIden)]
enum RefreshToken {
    Table,
    Id,
    TokenHash,
    FamilyId,
    CustomerId,
    CompanyUserId,
    Scopes,
    ClientId,
    IssuedAt,
    ExpiresAt,
    RevokedAt,
    RotatedIntoId,
}

#[derive(DeriveIden)]
enum LoginAttempt {
    Table,
    Subject,
    Failures,
    WindowStartedAt,
    BlockedUntil,
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().auto_increment().primary_key().to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

fn text_or_empty(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().default("").to_owned()
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

fn uuid(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().unique_key().to_owned()
}

fn reference(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

fn seconds(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, Restrict, SetNull};

        manager
            .create_table(
                Table::create()
                    .table(Customer::Table)
                    .col(id(Customer::Id))
                    .col(text(Customer::CustomerReference).unique_key())
                    .col(text(Customer::Email))
                    .col(text(Customer::EmailNormalized).unique_key())
                    .col(ColumnDef::new(Customer::PasswordHash).string().null())
                    .col(text_or_empty(Customer::Salutation))
                    .col(text_or_empty(Customer::FirstName))
                    .col(text_or_empty(Customer::LastName))
                    .col(flag(Customer::IsActive))
                    .col(seconds(Customer::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Company::Table)
                    .col(id(Company::Id))
                    .col(uuid(Company::Uuid))
                    .col(text(Company::Name))
                    .col(
                        text(Company::Status).check(
                            Expr::col(Company::Status).is_in(["pending", "approved", "denied"]),
                        ),
                    )
                    .col(flag(Company::IsActive))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyUnitAddress::Table)
                    .col(id(CompanyUnitAddress::Id))
                    .col(uuid(CompanyUnitAddress::Uuid))
                    .col(reference(CompanyUnitAddress::CompanyId))
                    .col(text_or_empty(CompanyUnitAddress::Address1))
                    .col(text_or_empty(CompanyUnitAddress::Address2))
                    .col(text_or_empty(CompanyUnitAddress::Address3))
                    .col(text_or_empty(CompanyUnitAddress::ZipCode))
                    .col(text_or_empty(CompanyUnitAddress::City))
                    .col(text_or_empty(CompanyUnitAddress::Phone))
                    .col(text_or_empty(CompanyUnitAddress::Iso2Code))
                    .col(text_or_empty(CompanyUnitAddress::Comment))
                    .foreign_key(&mut fk(
                        "fk_company_unit_address_company",
                        (CompanyUnitAddress::Table, CompanyUnitAddress::CompanyId),
                        (Company::Table, Company::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyBusinessUnit::Table)
                    .col(id(CompanyBusinessUnit::Id))
                    .col(uuid(CompanyBusinessUnit::Uuid))
                    .col(reference(CompanyBusinessUnit::CompanyId))
                    .col(text(CompanyBusinessUnit::Name))
                    .col(text_or_empty(CompanyBusinessUnit::Email))
                    .col(text_or_empty(CompanyBusinessUnit::Phone))
                    .col(text_or_empty(CompanyBusinessUnit::ExternalUrl))
                    .col(text_or_empty(CompanyBusinessUnit::Bic))
                    .col(text_or_empty(CompanyBusinessUnit::Iban))
                    .col(
                        ColumnDef::new(CompanyBusinessUnit::DefaultBillingAddressId)
                            .integer()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_company_business_unit_company",
                        (CompanyBusinessUnit::Table, CompanyBusinessUnit::CompanyId),
                        (Company::Table, Company::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_business_unit_default_billing_address",
                        (CompanyBusinessUnit::Table, CompanyBusinessUnit::DefaultBillingAddressId),
                        (CompanyUnitAddress::Table, CompanyUnitAddress::Id),
                        SetNull,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyUnitAddressToBusinessUnit::Table)
                    .col(reference(CompanyUnitAddressToBusinessUnit::AddressId))
                    .col(reference(CompanyUnitAddressToBusinessUnit::BusinessUnitId))
                    .primary_key(
                        Index::create()
                            .col(CompanyUnitAddressToBusinessUnit::AddressId)
                            .col(CompanyUnitAddressToBusinessUnit::BusinessUnitId),
                    )
                    .foreign_key(&mut fk(
                        "fk_address_to_unit_address",
                        (
                            CompanyUnitAddressToBusinessUnit::Table,
                            CompanyUnitAddressToBusinessUnit::AddressId,
                        ),
                        (CompanyUnitAddress::Table, CompanyUnitAddress::Id),
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_address_to_unit_unit",
                        (
                            CompanyUnitAddressToBusinessUnit::Table,
                            CompanyUnitAddressToBusinessUnit::BusinessUnitId,
                        ),
                        (CompanyBusinessUnit::Table, CompanyBusinessUnit::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyRole::Table)
                    .col(id(CompanyRole::Id))
                    .col(uuid(CompanyRole::Uuid))
                    .col(reference(CompanyRole::CompanyId))
                    .col(text(CompanyRole::Name))
                    .col(flag(CompanyRole::IsDefault))
                    .foreign_key(&mut fk(
                        "fk_company_role_company",
                        (CompanyRole::Table, CompanyRole::CompanyId),
                        (Company::Table, Company::Id),
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("uq_company_role_company_name", CompanyRole::Table, &["company_id", "name"])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyRolePermission::Table)
                    .col(reference(CompanyRolePermission::RoleId))
                    .col(text(CompanyRolePermission::PermissionKey))
                    .primary_key(
                        Index::create()
                            .col(CompanyRolePermission::RoleId)
                            .col(CompanyRolePermission::PermissionKey),
                    )
                    .foreign_key(&mut fk(
                        "fk_company_role_permission_role",
                        (CompanyRolePermission::Table, CompanyRolePermission::RoleId),
                        (CompanyRole::Table, CompanyRole::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyUser::Table)
                    .col(id(CompanyUser::Id))
                    .col(uuid(CompanyUser::Uuid))
                    .col(reference(CompanyUser::CustomerId))
                    .col(reference(CompanyUser::CompanyId))
                    .col(ColumnDef::new(CompanyUser::BusinessUnitId).integer().null())
                    .col(flag(CompanyUser::IsActive))
                    .col(flag(CompanyUser::IsDefault))
                    .col(seconds(CompanyUser::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_company_user_customer",
                        (CompanyUser::Table, CompanyUser::CustomerId),
                        (Customer::Table, Customer::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_user_company",
                        (CompanyUser::Table, CompanyUser::CompanyId),
                        (Company::Table, Company::Id),
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_user_business_unit",
                        (CompanyUser::Table, CompanyUser::BusinessUnitId),
                        (CompanyBusinessUnit::Table, CompanyBusinessUnit::Id),
                        SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_company_user_customer_company",
                    CompanyUser::Table,
                    &["customer_id", "company_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ix_company_user_company", CompanyUser::Table, &["company_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyUserRole::Table)
                    .col(reference(CompanyUserRole::CompanyUserId))
                    .col(reference(CompanyUserRole::RoleId))
                    .primary_key(
                        Index::create()
                            .col(CompanyUserRole::CompanyUserId)
                            .col(CompanyUserRole::RoleId),
                    )
                    .foreign_key(&mut fk(
                        "fk_company_user_role_user",
                        (CompanyUserRole::Table, CompanyUserRole::CompanyUserId),
                        (CompanyUser::Table, CompanyUser::Id),
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_user_role_role",
                        (CompanyUserRole::Table, CompanyUserRole::RoleId),
                        (CompanyRole::Table, CompanyRole::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .col(
                        ColumnDef::new(RefreshToken::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(RefreshToken::TokenHash).unique_key())
                    .col(ColumnDef::new(RefreshToken::FamilyId).uuid().not_null())
                    .col(reference(RefreshToken::CustomerId))
                    .col(ColumnDef::new(RefreshToken::CompanyUserId).integer().null())
                    .col(text(RefreshToken::Scopes))
                    .col(text(RefreshToken::ClientId))
                    .col(seconds(RefreshToken::IssuedAt))
                    .col(seconds(RefreshToken::ExpiresAt))
                    .col(ColumnDef::new(RefreshToken::RevokedAt).big_integer().null())
                    .col(ColumnDef::new(RefreshToken::RotatedIntoId).big_integer().null())
                    .foreign_key(&mut fk(
                        "fk_refresh_token_customer",
                        (RefreshToken::Table, RefreshToken::CustomerId),
                        (Customer::Table, Customer::Id),
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_refresh_token_company_user",
                        (RefreshToken::Table, RefreshToken::CompanyUserId),
                        (CompanyUser::Table, CompanyUser::Id),
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_refresh_token_family", "family_id"),
            ("ix_refresh_token_customer", "customer_id"),
            ("ix_refresh_token_expires", "expires_at"),
        ] {
            manager.create_index(index(name, RefreshToken::Table, &[col])).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(LoginAttempt::Table)
                    .col(text(LoginAttempt::Subject).primary_key())
                    .col(ColumnDef::new(LoginAttempt::Failures).integer().not_null())
                    .col(seconds(LoginAttempt::WindowStartedAt))
                    .col(ColumnDef::new(LoginAttempt::BlockedUntil).big_integer().null())
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never dangle.
        for table in [
            LoginAttempt::Table.into_iden(),
            RefreshToken::Table.into_iden(),
            CompanyUserRole::Table.into_iden(),
            CompanyUser::Table.into_iden(),
            CompanyRolePermission::Table.into_iden(),
            CompanyRole::Table.into_iden(),
            CompanyUnitAddressToBusinessUnit::Table.into_iden(),
            CompanyBusinessUnit::Table.into_iden(),
            CompanyUnitAddress::Table.into_iden(),
            Company::Table.into_iden(),
            Customer::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
