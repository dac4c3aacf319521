//! The admin verbs: manage the directory without SQL. Every `add` goes through the import
//! (a one-row dataset), so it checks exactly what an import checks.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::{BufRead, IsTerminal},
    net::SocketAddr,
};

use clap::Subcommand;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use uuid::Uuid;

use crate::{
    app::BoxError,
    auth::password::{self, Password},
    config::Config,
    dataset::{self, DEMO_DATASET, Dataset, LineIndex},
    db,
    service::{directory, password_policy::PasswordPolicy},
};

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Add a customer; the password is read from a prompt, or from stdin when piped.
    Add {
        /// Customer reference, e.g. `DE--21`.
        #[arg(long)]
        reference: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        salutation: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Male or Female.
        #[arg(long, value_parser = ["Male", "Female"])]
        gender: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date_of_birth: Option<String>,
        /// Add the account deactivated.
        #[arg(long)]
        inactive: bool,
        /// Add the customer without a password (it cannot log in until one is set).
        #[arg(long)]
        no_password: bool,
    },
    /// Set a customer's password, read from a prompt, or from stdin when piped.
    SetPassword {
        /// Customer reference or e-mail.
        customer: String,
    },
    /// Set a customer's gender or date of birth (`none` makes one unknown again).
    SetProfile {
        /// Customer reference or e-mail.
        customer: String,
        /// Male, Female or none.
        #[arg(long, value_parser = ["Male", "Female", "none"])]
        gender: Option<String>,
        /// YYYY-MM-DD or none.
        #[arg(long, value_parser = parse_date_or_none)]
        date_of_birth: Option<String>,
    },
    /// Deactivate a customer: logins fail from now on.
    Deactivate {
        /// Customer reference or e-mail.
        customer: String,
    },
    /// Reactivate a customer.
    Activate {
        /// Customer reference or e-mail.
        customer: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add a sales agent; the password is read from a prompt, or from stdin when piped.
    Add {
        /// The login name, usually an e-mail address.
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Add the agent deactivated.
        #[arg(long)]
        inactive: bool,
        /// Add the agent without a password (it cannot log in until one is set).
        #[arg(long)]
        no_password: bool,
    },
    /// Set an agent's password, read from a prompt, or from stdin when piped.
    SetPassword { username: String },
    /// Deactivate an agent: its logins and refreshes fail from now on.
    Deactivate { username: String },
    /// Reactivate an agent.
    Activate { username: String },
}

#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// Add a company; prints its uuid.
    Add {
        #[arg(long)]
        name: String,
        /// pending, approved or denied.
        #[arg(long, default_value = "approved")]
        status: String,
        #[arg(long)]
        inactive: bool,
        /// The uuid to give it (default: a random one).
        #[arg(long)]
        uuid: Option<Uuid>,
    },
    /// Set a company's status: pending, approved or denied.
    SetStatus { uuid: Uuid, status: String },
    /// Deactivate a company: its company users cannot be entered.
    Deactivate { uuid: Uuid },
    /// Reactivate a company.
    Activate { uuid: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum BusinessUnitCommand {
    /// Add a business unit to a company; prints its uuid.
    Add {
        /// The company's uuid.
        #[arg(long)]
        company: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long, default_value = "")]
        external_url: String,
        #[arg(long, default_value = "")]
        bic: String,
        #[arg(long, default_value = "")]
        iban: String,
        /// Uuid of an address of the same company.
        #[arg(long)]
        default_billing_address: Option<String>,
        #[arg(long)]
        uuid: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// Add an address to a company, linked to some of its units; prints its uuid.
    Add {
        /// The company's uuid.
        #[arg(long)]
        company: String,
        /// Uuid of a business unit of the company (repeatable).
        #[arg(long = "business-unit")]
        business_units: Vec<String>,
        #[arg(long, default_value = "")]
        address1: String,
        #[arg(long, default_value = "")]
        address2: String,
        #[arg(long, default_value = "")]
        address3: String,
        #[arg(long, default_value = "")]
        zip_code: String,
        #[arg(long, default_value = "")]
        city: String,
        #[arg(long, default_value = "")]
        phone: String,
        /// ISO 3166-1 alpha-2 country code, e.g. DE.
        #[arg(long, default_value = "")]
        iso2_code: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[arg(long)]
        uuid: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Add a role to a company; prints its uuid.
    Add {
        /// The company's uuid.
        #[arg(long)]
        company: String,
        #[arg(long)]
        name: String,
        /// A permission key the role grants, e.g. SeeCompanyUsersPermissionPlugin (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// The company's default role.
        #[arg(long)]
        default: bool,
        #[arg(long)]
        uuid: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CompanyUserCommand {
    /// Make a customer a member of a company; prints the company user's uuid.
    Add {
        /// Customer reference or e-mail.
        #[arg(long)]
        customer: String,
        /// The company's uuid.
        #[arg(long)]
        company: String,
        /// Uuid of a business unit of the company.
        #[arg(long)]
        business_unit: Option<String>,
        /// Uuid of a role of the company (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Make it the customer's default company user.
        #[arg(long)]
        default: bool,
        #[arg(long)]
        inactive: bool,
        #[arg(long)]
        uuid: Option<Uuid>,
    },
    /// Deactivate a company user: it can no longer be entered or refreshed.
    Deactivate { uuid: Uuid },
    /// Reactivate a company user.
    Activate { uuid: Uuid },
    /// Make this company user its customer's default one.
    SetDefault { uuid: Uuid },
}

async fn connect(config: &Config) -> Result<DatabaseConnection, BoxError> {
    Ok(db::connect(&config.database_url_or("glue-auth.db"), config).await?)
}

/// Imports a one-row dataset and prints the uuid the row got.
async fn add_one(config: &Config, data: Dataset, given: Option<Uuid>) -> Result<(), BoxError> {
    let db = connect(config).await?;
    let policy = PasswordPolicy::of(config);
    let summary = dataset::import(&db, &data, &LineIndex::default(), &policy).await?;
    if let Some(uuid) = given.or_else(|| summary.created.first().copied()) {
        println!("{uuid}");
    }
    Ok(())
}

/// A `YYYY-MM-DD` date.
fn parse_date(text: &str) -> Result<String, String> {
    if dataset::is_iso_date(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not a YYYY-MM-DD date"))
    }
}

/// A `YYYY-MM-DD` date, or `none`.
fn parse_date_or_none(text: &str) -> Result<String, String> {
    if text == "none" { Ok(text.to_owned()) } else { parse_date(text) }
}

/// Reads a password from a prompt (twice, without echo) or one line of piped stdin.
fn read_password() -> Result<Password, BoxError> {
    let stdin = std::io::stdin();
    let secret = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if secret.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(Password::new(secret))
}

pub async fn customer(config: &Config, cmd: CustomerCommand) -> Result<(), BoxError> {
    match cmd {
        CustomerCommand::Add {
            reference,
            email,
            salutation,
            first_name,
            last_name,
            gender,
            date_of_birth,
            inactive,
            no_password,
        } => {
            let password_hash =
                if no_password { None } else { Some(new_password_hash(config).await?) };
            let data = Dataset {
                customers: vec![dataset::CustomerRow {
                    reference: reference.clone(),
                    email,
                    salutation,
                    first_name,
                    last_name,
                    active: !inactive,
                    password: None,
                    password_hash,
                    gender,
                    date_of_birth,
                }],
                ..Dataset::default()
            };
            add_one(config, data, None).await?;
            println!("added customer {reference}");
        }
        CustomerCommand::SetPassword { customer } => {
            let phc = new_password_hash(config).await?;
            directory::set_customer_password_hash(&connect(config).await?, &customer, phc).await?;
            println!("password set for {customer}");
        }
        CustomerCommand::SetProfile { customer, gender, date_of_birth } => {
            let known = |value: Option<String>| value.map(|v| (v != "none").then_some(v));
            let profile =
                directory::Profile { gender: known(gender), date_of_birth: known(date_of_birth) };
            directory::set_customer_profile(&connect(config).await?, &customer, profile).await?;
            println!("profile set for {customer}");
        }
        CustomerCommand::Deactivate { customer } => {
            directory::set_customer_active(&connect(config).await?, &customer, false).await?;
            println!("deactivated {customer}");
        }
        CustomerCommand::Activate { customer } => {
            directory::set_customer_active(&connect(config).await?, &customer, true).await?;
            println!("activated {customer}");
        }
    }
    Ok(())
}

/// A new password from the prompt or stdin, under the policy, hashed with Argon2id.
async fn new_password_hash(config: &Config) -> Result<String, BoxError> {
    let pw = read_password()?;
    PasswordPolicy::of(config).check(pw.expose())?;
    Ok(tokio::task::spawn_blocking(move || password::hash(&pw)).await??)
}

pub async fn agent(config: &Config, cmd: AgentCommand) -> Result<(), BoxError> {
    match cmd {
        AgentCommand::Add { username, first_name, last_name, inactive, no_password } => {
            let password_hash =
                if no_password { None } else { Some(new_password_hash(config).await?) };
            let row = dataset::AgentRow {
                username: username.clone(),
                first_name,
                last_name,
                active: !inactive,
                password: None,
                password_hash,
            };
            add_one(config, Dataset { agents: vec![row], ..Dataset::default() }, None).await?;
            println!("added agent {username}");
        }
        AgentCommand::SetPassword { username } => {
            let phc = new_password_hash(config).await?;
            directory::set_agent_password_hash(&connect(config).await?, &username, phc).await?;
            println!("password set for agent {username}");
        }
        AgentCommand::Deactivate { ref username } | AgentCommand::Activate { ref username } => {
            let active = matches!(cmd, AgentCommand::Activate { .. });
            directory::set_agent_active(&connect(config).await?, username, active).await?;
            println!("agent {username} is {}", if active { "active" } else { "inactive" });
        }
    }
    Ok(())
}

pub async fn company(config: &Config, cmd: CompanyCommand) -> Result<(), BoxError> {
    match cmd {
        CompanyCommand::Add { name, status, inactive, uuid } => {
            let row = dataset::CompanyRow { key: None, uuid, name, status, active: !inactive };
            add_one(config, Dataset { companies: vec![row], ..Dataset::default() }, uuid).await
        }
        CompanyCommand::SetStatus { uuid, status } => {
            directory::set_company_status(&connect(config).await?, uuid, Some(&status), None)
                .await?;
            println!("company {uuid} is {status}");
            Ok(())
        }
        CompanyCommand::Deactivate { uuid } | CompanyCommand::Activate { uuid } => {
            let active = matches!(cmd, CompanyCommand::Activate { .. });
            directory::set_company_status(&connect(config).await?, uuid, None, Some(active))
                .await?;
            println!("company {uuid} is {}", if active { "active" } else { "inactive" });
            Ok(())
        }
    }
}

pub async fn business_unit(config: &Config, cmd: BusinessUnitCommand) -> Result<(), BoxError> {
    let BusinessUnitCommand::Add {
        company,
        name,
        email,
        phone,
        external_url,
        bic,
        iban,
        default_billing_address,
        uuid,
    } = cmd;
    let row = dataset::BusinessUnitRow {
        key: None,
        company,
        uuid,
        name,
        email,
        phone,
        external_url,
        bic,
        iban,
        default_billing_address,
    };
    add_one(config, Dataset { business_units: vec![row], ..Dataset::default() }, uuid).await
}

pub async fn address(config: &Config, cmd: AddressCommand) -> Result<(), BoxError> {
    let AddressCommand::Add {
        company,
        business_units,
        address1,
        address2,
        address3,
        zip_code,
        city,
        phone,
        iso2_code,
        comment,
        uuid,
    } = cmd;
    // The import links addresses to units by key or uuid; a one-row import needs a uuid.
    let uuid = Some(uuid.unwrap_or_else(Uuid::new_v4));
    let row = dataset::AddressRow {
        key: None,
        company,
        uuid,
        address1,
        address2,
        address3,
        zip_code,
        city,
        phone,
        iso2_code,
        comment,
        business_units,
    };
    add_one(config, Dataset { addresses: vec![row], ..Dataset::default() }, uuid).await
}

pub async fn role(config: &Config, cmd: RoleCommand) -> Result<(), BoxError> {
    let RoleCommand::Add { company, name, permissions, default, uuid } = cmd;
    let row = dataset::RoleRow { key: None, company, uuid, name, default, permissions };
    add_one(config, Dataset { roles: vec![row], ..Dataset::default() }, uuid).await
}

pub async fn company_user(config: &Config, cmd: CompanyUserCommand) -> Result<(), BoxError> {
    match cmd {
        CompanyUserCommand::Add {
            customer,
            company,
            business_unit,
            roles,
            default,
            inactive,
            uuid,
        } => {
            let row = dataset::CompanyUserRow {
                key: None,
                uuid,
                customer,
                company,
                business_unit,
                roles,
                default,
                active: !inactive,
            };
            add_one(config, Dataset { company_users: vec![row], ..Dataset::default() }, uuid).await
        }
        CompanyUserCommand::Deactivate { uuid } | CompanyUserCommand::Activate { uuid } => {
            let active = matches!(cmd, CompanyUserCommand::Activate { .. });
            directory::set_company_user_active(&connect(config).await?, uuid, active).await?;
            println!("company user {uuid} is {}", if active { "active" } else { "inactive" });
            Ok(())
        }
        CompanyUserCommand::SetDefault { uuid } => {
            directory::set_default_company_user_by_uuid(&connect(config).await?, uuid).await?;
            println!("company user {uuid} is now its customer's default");
            Ok(())
        }
    }
}

/// Loads the demo dataset into an empty database; leaves a used one alone (so a second
/// `demo` start reuses its data). Returns whether it loaded.
pub async fn load_demo(db: &DatabaseConnection) -> Result<bool, BoxError> {
    if entity::customer::Entity::find().count(db).await? > 0 {
        // A demo database from before agents existed gets the demo's agents.
        if entity::agent::Entity::find().count(db).await? == 0 {
            let (data, lines) = dataset::parse(DEMO_DATASET)?;
            let agents = Dataset { agents: data.agents, ..Dataset::default() };
            dataset::import(db, &agents, &lines, &PasswordPolicy::DEMO_DATASET).await?;
        }
        return Ok(false);
    }
    dataset::import_text(db, DEMO_DATASET, &PasswordPolicy::DEMO_DATASET).await?;
    Ok(true)
}

/// What `demo` prints: where to look, and who can log in as what.
pub fn demo_banner(addr: SocketAddr, loaded: bool) -> Result<String, BoxError> {
    let (data, _) = dataset::parse(DEMO_DATASET)?;
    let companies: HashMap<&str, &dataset::CompanyRow> =
        data.companies.iter().filter_map(|c| Some((c.key.as_deref()?, c))).collect();
    let roles: HashMap<&str, &str> =
        data.roles.iter().filter_map(|r| Some((r.key.as_deref()?, r.name.as_str()))).collect();
    let mut out = String::new();
    writeln!(out)?;
    writeln!(
        out,
        "glue-auth demo is running ({})",
        if loaded { "demo data loaded" } else { "demo data reused" }
    )?;
    writeln!(out, "  Swagger UI:       http://{addr}/docs")?;
    writeln!(out, "  OpenAPI document: http://{addr}/openapi.json")?;
    writeln!(out)?;
    writeln!(out, "Demo logins (POST /access-tokens):")?;
    for c in &data.customers {
        let memberships: Vec<String> = data
            .company_users
            .iter()
            .filter(|u| u.customer == c.reference)
            .map(|u| {
                let company = companies.get(u.company.as_str());
                let mut text = company.map_or(u.company.clone(), |c| c.name.clone());
                let role_names: Vec<&str> =
                    u.roles.iter().filter_map(|r| roles.get(r.as_str()).copied()).collect();
                if !role_names.is_empty() {
                    text.push_str(&format!(" [{}]", role_names.join(", ")));
                }
                if u.default {
                    text.push_str(" (default)");
                }
                if !u.active {
                    text.push_str(" (inactive membership)");
                }
                if company.is_some_and(|c| c.status != "approved") {
                    text.push_str(" (company not approved)");
                }
                text
            })
            .collect();
        let about = if !c.active {
            "inactive account: login fails".to_owned()
        } else if memberships.is_empty() {
            "no company".to_owned()
        } else {
            memberships.join("; ")
        };
        writeln!(
            out,
            "  {:<24} password {:<10} {about}",
            c.email,
            c.password.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Demo agents (POST /agent-access-tokens, then act for a customer):")?;
    for a in &data.agents {
        let name = format!("{} {}", a.first_name, a.last_name);
        writeln!(
            out,
            "  {:<24} password {:<10} {}",
            a.username,
            a.password.as_deref().unwrap_or("-"),
            name.trim()
        )?;
    }
    writeln!(out)?;
    Ok(out)
}
