-- Spryker's tables as Propel 2 generates them for MySQL/MariaDB (docs/migrating-from-spryker.md
-- §2): the columns of spryker/customer, company, company-business-unit, company-unit-address,
-- company-role, company-user, permission, country, business-on-behalf and the *-rest-api
-- modules (uuid). Foreign keys to tables the import does not read (spy_locale, spy_user,
-- spy_region, spy_customer_address) are left out.
CREATE TABLE `spy_customer` (
    `id_customer` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_locale` INTEGER,
    `fk_user` INTEGER,
    `anonymized_at` DATETIME,
    `company` VARCHAR(100),
    `customer_reference` VARCHAR(255) NOT NULL,
    `date_of_birth` DATE,
    `default_billing_address` INTEGER,
    `default_shipping_address` INTEGER,
    `email` VARCHAR(255) NOT NULL,
    `first_name` VARCHAR(100),
    `gender` TINYINT,
    `last_name` VARCHAR(100),
    `password` VARCHAR(255),
    `phone` VARCHAR(255),
    `registered` DATE,
    `registration_key` VARCHAR(150),
    `restore_password_date` DATETIME,
    `restore_password_key` VARCHAR(150),
    `salutation` TINYINT,
    `created_at` DATETIME,
    `updated_at` DATETIME,
    PRIMARY KEY (`id_customer`),
    UNIQUE INDEX `spy_customer-email` (`email`),
    UNIQUE INDEX `spy_customer-customer_reference` (`customer_reference`),
    INDEX `spy_customer-first_name` (`first_name`),
    INDEX `spy_customer-last_name` (`last_name`),
    INDEX `spy_customer-anonymized_at` (`anonymized_at`)
) ENGINE=InnoDB;

CREATE TABLE `spy_country` (
    `id_country` INTEGER NOT NULL AUTO_INCREMENT,
    `iso2_code` VARCHAR(2) NOT NULL,
    `iso3_code` VARCHAR(3),
    `name` VARCHAR(255),
    `postal_code_mandatory` TINYINT(1) DEFAULT 0,
    `postal_code_regex` VARCHAR(500),
    PRIMARY KEY (`id_country`),
    UNIQUE INDEX `spy_country-iso2_code` (`iso2_code`),
    UNIQUE INDEX `spy_country-iso3_code` (`iso3_code`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company` (
    `id_company` INTEGER NOT NULL AUTO_INCREMENT,
    `is_active` TINYINT(1) DEFAULT 0,
    `key` VARCHAR(255),
    `name` VARCHAR(255) NOT NULL,
    `status` TINYINT(8) DEFAULT 0 NOT NULL,
    `uuid` VARCHAR(36),
    PRIMARY KEY (`id_company`),
    UNIQUE INDEX `spy_company-unique-uuid` (`uuid`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company_unit_address` (
    `id_company_unit_address` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company` INTEGER,
    `fk_country` INTEGER NOT NULL,
    `fk_region` INTEGER,
    `address1` VARCHAR(255),
    `address2` VARCHAR(255),
    `address3` VARCHAR(255),
    `city` VARCHAR(255),
    `comment` VARCHAR(255),
    `key` VARCHAR(255),
    `phone` VARCHAR(255),
    `uuid` VARCHAR(36),
    `zip_code` VARCHAR(15),
    PRIMARY KEY (`id_company_unit_address`),
    UNIQUE INDEX `spy_company_unit_address-unique-uuid` (`uuid`),
    UNIQUE INDEX `spy_company_unit_address-unique-key` (`key`),
    CONSTRAINT `spy_company_unit_address-fk_company` FOREIGN KEY (`fk_company`) REFERENCES `spy_company` (`id_company`),
    CONSTRAINT `spy_company_unit_address-fk_country` FOREIGN KEY (`fk_country`) REFERENCES `spy_country` (`id_country`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company_business_unit` (
    `id_company_business_unit` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company` INTEGER NOT NULL,
    `fk_parent_company_business_unit` INTEGER,
    `bic` VARCHAR(255),
    `default_billing_address` INTEGER,
    `email` VARCHAR(255),
    `external_url` VARCHAR(255),
    `iban` VARCHAR(255),
    `key` VARCHAR(255),
    `name` VARCHAR(255) NOT NULL,
    `phone` VARCHAR(255),
    `uuid` VARCHAR(36),
    PRIMARY KEY (`id_company_business_unit`),
    UNIQUE INDEX `spy_company_business_unit-unique-uuid` (`uuid`),
    UNIQUE INDEX `spy_company_business_unit-unique-key` (`key`),
    CONSTRAINT `spy_company_business_unit-fk_company` FOREIGN KEY (`fk_company`) REFERENCES `spy_company` (`id_company`),
    CONSTRAINT `spy_company_business_unit-fk_parent_company_business_unit` FOREIGN KEY (`fk_parent_company_business_unit`) REFERENCES `spy_company_business_unit` (`id_company_business_unit`),
    CONSTRAINT `spy_company_business_unit-default_billing_address` FOREIGN KEY (`default_billing_address`) REFERENCES `spy_company_unit_address` (`id_company_unit_address`) ON DELETE SET NULL
) ENGINE=InnoDB;

CREATE TABLE `spy_company_unit_address_to_company_business_unit` (
    `id_company_unit_address_to_company_business_unit` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company_business_unit` INTEGER NOT NULL,
    `fk_company_unit_address` INTEGER NOT NULL,
    PRIMARY KEY (`id_company_unit_address_to_company_business_unit`),
    CONSTRAINT `spy_company_unit_address_to_company_business_unit-fk_cbu` FOREIGN KEY (`fk_company_business_unit`) REFERENCES `spy_company_business_unit` (`id_company_business_unit`) ON DELETE CASCADE,
    CONSTRAINT `spy_company_unit_address_to_company_business_unit-fk_cua` FOREIGN KEY (`fk_company_unit_address`) REFERENCES `spy_company_unit_address` (`id_company_unit_address`) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE `spy_permission` (
    `id_permission` INTEGER NOT NULL AUTO_INCREMENT,
    `configuration_signature` TEXT,
    `key` VARCHAR(255) NOT NULL,
    PRIMARY KEY (`id_permission`),
    UNIQUE INDEX `spy_permission-key` (`key`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company_role` (
    `id_company_role` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company` INTEGER NOT NULL,
    `is_default` TINYINT(1) DEFAULT 0 NOT NULL,
    `key` VARCHAR(255),
    `name` VARCHAR(255) NOT NULL,
    `uuid` VARCHAR(36),
    PRIMARY KEY (`id_company_role`),
    UNIQUE INDEX `spy_company_role-unique-uuid` (`uuid`),
    CONSTRAINT `spy_company_role-fk_company` FOREIGN KEY (`fk_company`) REFERENCES `spy_company` (`id_company`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company_role_to_permission` (
    `id_company_role_to_permission` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company_role` INTEGER NOT NULL,
    `fk_permission` INTEGER NOT NULL,
    `configuration` TEXT NOT NULL,
    PRIMARY KEY (`id_company_role_to_permission`,`fk_company_role`,`fk_permission`),
    CONSTRAINT `spy_company_role_to_permission-fk_permission` FOREIGN KEY (`fk_permission`) REFERENCES `spy_permission` (`id_permission`) ON DELETE CASCADE,
    CONSTRAINT `spy_company_role_to_permission-fk_company_role` FOREIGN KEY (`fk_company_role`) REFERENCES `spy_company_role` (`id_company_role`) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE `spy_company_user` (
    `id_company_user` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company` INTEGER NOT NULL,
    `fk_company_business_unit` INTEGER,
    `fk_customer` INTEGER NOT NULL,
    `is_active` TINYINT(1) DEFAULT 1 NOT NULL,
    `is_default` TINYINT(1) DEFAULT 0 NOT NULL,
    `key` VARCHAR(255),
    `uuid` VARCHAR(36),
    PRIMARY KEY (`id_company_user`),
    UNIQUE INDEX `spy_company_user-unique-uuid` (`uuid`),
    CONSTRAINT `spy_co_u-fk_company_business_unit` FOREIGN KEY (`fk_company_business_unit`) REFERENCES `spy_company_business_unit` (`id_company_business_unit`) ON DELETE SET NULL,
    CONSTRAINT `spy_company_user-fk_company` FOREIGN KEY (`fk_company`) REFERENCES `spy_company` (`id_company`),
    CONSTRAINT `spy_company_user-fk_customer` FOREIGN KEY (`fk_customer`) REFERENCES `spy_customer` (`id_customer`)
) ENGINE=InnoDB;

CREATE TABLE `spy_company_role_to_company_user` (
    `id_company_role_to_company_user` INTEGER NOT NULL AUTO_INCREMENT,
    `fk_company_role` INTEGER NOT NULL,
    `fk_company_user` INTEGER NOT NULL,
    `created_at` DATETIME,
    `updated_at` DATETIME,
    PRIMARY KEY (`id_company_role_to_company_user`),
    UNIQUE INDEX `fk_company_role-fk_company_user` (`fk_company_role`, `fk_company_user`),
    CONSTRAINT `spy_company_role_to_company_user-fk_company_role` FOREIGN KEY (`fk_company_role`) REFERENCES `spy_company_role` (`id_company_role`) ON DELETE CASCADE,
    CONSTRAINT `spy_company_role_to_company_user-fk_company_user` FOREIGN KEY (`fk_company_user`) REFERENCES `spy_company_user` (`id_company_user`) ON DELETE CASCADE
) ENGINE=InnoDB;
