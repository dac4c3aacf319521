-- Spryker's tables as Propel 2 generates them for PostgreSQL (docs/migrating-from-spryker.md
-- §2): the columns of spryker/customer, company, company-business-unit, company-unit-address,
-- company-role, company-user, permission, country, business-on-behalf and the *-rest-api
-- modules (uuid). Foreign keys to tables the import does not read (spy_locale, spy_user,
-- spy_region, spy_customer_address) are left out.
CREATE TABLE "spy_customer" (
    "id_customer" SERIAL NOT NULL,
    "fk_locale" INTEGER,
    "fk_user" INTEGER,
    "anonymized_at" TIMESTAMP,
    "company" VARCHAR(100),
    "customer_reference" VARCHAR(255) NOT NULL,
    "date_of_birth" DATE,
    "default_billing_address" INTEGER,
    "default_shipping_address" INTEGER,
    "email" VARCHAR(255) NOT NULL,
    "first_name" VARCHAR(100),
    "gender" INT2,
    "last_name" VARCHAR(100),
    "password" VARCHAR(255),
    "phone" VARCHAR(255),
    "registered" DATE,
    "registration_key" VARCHAR(150),
    "restore_password_date" TIMESTAMP,
    "restore_password_key" VARCHAR(150),
    "salutation" INT2,
    "created_at" TIMESTAMP,
    "updated_at" TIMESTAMP,
    PRIMARY KEY ("id_customer"),
    CONSTRAINT "spy_customer-email" UNIQUE ("email"),
    CONSTRAINT "spy_customer-customer_reference" UNIQUE ("customer_reference")
);

CREATE TABLE "spy_country" (
    "id_country" SERIAL NOT NULL,
    "iso2_code" VARCHAR(2) NOT NULL,
    "iso3_code" VARCHAR(3),
    "name" VARCHAR(255),
    "postal_code_mandatory" BOOLEAN DEFAULT 'f',
    "postal_code_regex" VARCHAR(500),
    PRIMARY KEY ("id_country"),
    CONSTRAINT "spy_country-iso2_code" UNIQUE ("iso2_code"),
    CONSTRAINT "spy_country-iso3_code" UNIQUE ("iso3_code")
);

CREATE TABLE "spy_company" (
    "id_company" SERIAL NOT NULL,
    "is_active" BOOLEAN DEFAULT 'f',
    "key" VARCHAR(255),
    "name" VARCHAR(255) NOT NULL,
    "status" INT2 DEFAULT 0 NOT NULL,
    "uuid" VARCHAR(36),
    PRIMARY KEY ("id_company"),
    CONSTRAINT "spy_company-unique-uuid" UNIQUE ("uuid")
);

CREATE TABLE "spy_company_unit_address" (
    "id_company_unit_address" SERIAL NOT NULL,
    "fk_company" INTEGER,
    "fk_country" INTEGER NOT NULL,
    "fk_region" INTEGER,
    "address1" VARCHAR(255),
    "address2" VARCHAR(255),
    "address3" VARCHAR(255),
    "city" VARCHAR(255),
    "comment" VARCHAR(255),
    "key" VARCHAR(255),
    "phone" VARCHAR(255),
    "uuid" VARCHAR(36),
    "zip_code" VARCHAR(15),
    PRIMARY KEY ("id_company_unit_address"),
    CONSTRAINT "spy_company_unit_address-unique-uuid" UNIQUE ("uuid"),
    CONSTRAINT "spy_company_unit_address-unique-key" UNIQUE ("key"),
    CONSTRAINT "spy_company_unit_address-fk_company" FOREIGN KEY ("fk_company") REFERENCES "spy_company" ("id_company"),
    CONSTRAINT "spy_company_unit_address-fk_country" FOREIGN KEY ("fk_country") REFERENCES "spy_country" ("id_country")
);

CREATE TABLE "spy_company_business_unit" (
    "id_company_business_unit" SERIAL NOT NULL,
    "fk_company" INTEGER NOT NULL,
    "fk_parent_company_business_unit" INTEGER,
    "bic" VARCHAR(255),
    "default_billing_address" INTEGER,
    "email" VARCHAR(255),
    "external_url" VARCHAR(255),
    "iban" VARCHAR(255),
    "key" VARCHAR(255),
    "name" VARCHAR(255) NOT NULL,
    "phone" VARCHAR(255),
    "uuid" VARCHAR(36),
    PRIMARY KEY ("id_company_business_unit"),
    CONSTRAINT "spy_company_business_unit-unique-uuid" UNIQUE ("uuid"),
    CONSTRAINT "spy_company_business_unit-unique-key" UNIQUE ("key"),
    CONSTRAINT "spy_company_business_unit-fk_company" FOREIGN KEY ("fk_company") REFERENCES "spy_company" ("id_company"),
    CONSTRAINT "spy_company_business_unit-fk_parent_company_business_unit" FOREIGN KEY ("fk_parent_company_business_unit") REFERENCES "spy_company_business_unit" ("id_company_business_unit"),
    CONSTRAINT "spy_company_business_unit-default_billing_address" FOREIGN KEY ("default_billing_address") REFERENCES "spy_company_unit_address" ("id_company_unit_address") ON DELETE SET NULL
);

CREATE TABLE "spy_company_unit_address_to_company_business_unit" (
    "id_company_unit_address_to_company_business_unit" SERIAL NOT NULL,
    "fk_company_business_unit" INTEGER NOT NULL,
    "fk_company_unit_address" INTEGER NOT NULL,
    PRIMARY KEY ("id_company_unit_address_to_company_business_unit"),
    CONSTRAINT "spy_company_unit_address_to_company_business_unit-fk_cbu" FOREIGN KEY ("fk_company_business_unit") REFERENCES "spy_company_business_unit" ("id_company_business_unit") ON DELETE CASCADE,
    CONSTRAINT "spy_company_unit_address_to_company_business_unit-fk_cua" FOREIGN KEY ("fk_company_unit_address") REFERENCES "spy_company_unit_address" ("id_company_unit_address") ON DELETE CASCADE
);

CREATE TABLE "spy_permission" (
    "id_permission" SERIAL NOT NULL,
    "configuration_signature" TEXT,
    "key" VARCHAR(255) NOT NULL,
    PRIMARY KEY ("id_permission"),
    CONSTRAINT "spy_permission-key" UNIQUE ("key")
);

CREATE TABLE "spy_company_role" (
    "id_company_role" SERIAL NOT NULL,
    "fk_company" INTEGER NOT NULL,
    "is_default" BOOLEAN DEFAULT 'f' NOT NULL,
    "key" VARCHAR(255),
    "name" VARCHAR(255) NOT NULL,
    "uuid" VARCHAR(36),
    PRIMARY KEY ("id_company_role"),
    CONSTRAINT "spy_company_role-unique-uuid" UNIQUE ("uuid"),
    CONSTRAINT "spy_company_role-fk_company" FOREIGN KEY ("fk_company") REFERENCES "spy_company" ("id_company")
);

CREATE TABLE "spy_company_role_to_permission" (
    "id_company_role_to_permission" SERIAL NOT NULL,
    "fk_company_role" INTEGER NOT NULL,
    "fk_permission" INTEGER NOT NULL,
    "configuration" TEXT NOT NULL,
    PRIMARY KEY ("id_company_role_to_permission","fk_company_role","fk_permission"),
    CONSTRAINT "spy_company_role_to_permission-fk_permission" FOREIGN KEY ("fk_permission") REFERENCES "spy_permission" ("id_permission") ON DELETE CASCADE,
    CONSTRAINT "spy_company_role_to_permission-fk_company_role" FOREIGN KEY ("fk_company_role") REFERENCES "spy_company_role" ("id_company_role") ON DELETE CASCADE
);

CREATE TABLE "spy_company_user" (
    "id_company_user" SERIAL NOT NULL,
    "fk_company" INTEGER NOT NULL,
    "fk_company_business_unit" INTEGER,
    "fk_customer" INTEGER NOT NULL,
    "is_active" BOOLEAN DEFAULT 't' NOT NULL,
    "is_default" BOOLEAN DEFAULT 'f' NOT NULL,
    "key" VARCHAR(255),
    "uuid" VARCHAR(36),
    PRIMARY KEY ("id_company_user"),
    CONSTRAINT "spy_company_user-unique-uuid" UNIQUE ("uuid"),
    CONSTRAINT "spy_co_u-fk_company_business_unit" FOREIGN KEY ("fk_company_business_unit") REFERENCES "spy_company_business_unit" ("id_company_business_unit") ON DELETE SET NULL,
    CONSTRAINT "spy_company_user-fk_company" FOREIGN KEY ("fk_company") REFERENCES "spy_company" ("id_company"),
    CONSTRAINT "spy_company_user-fk_customer" FOREIGN KEY ("fk_customer") REFERENCES "spy_customer" ("id_customer")
);

CREATE TABLE "spy_company_role_to_company_user" (
    "id_company_role_to_company_user" SERIAL NOT NULL,
    "fk_company_role" INTEGER NOT NULL,
    "fk_company_user" INTEGER NOT NULL,
    "created_at" TIMESTAMP,
    "updated_at" TIMESTAMP,
    PRIMARY KEY ("id_company_role_to_company_user"),
    CONSTRAINT "fk_company_role-fk_company_user" UNIQUE ("fk_company_role", "fk_company_user"),
    CONSTRAINT "spy_company_role_to_company_user-fk_company_role" FOREIGN KEY ("fk_company_role") REFERENCES "spy_company_role" ("id_company_role") ON DELETE CASCADE,
    CONSTRAINT "spy_company_role_to_company_user-fk_company_user" FOREIGN KEY ("fk_company_user") REFERENCES "spy_company_user" ("id_company_user") ON DELETE CASCADE
);
