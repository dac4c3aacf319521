//! The command line: `serve`, `demo`, `migrate`, `openapi`, `import`, `import-spryker` and
//! the admin verbs.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{admin, app, config::Config, dataset, db, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "glue-auth",
    version,
    about = "Company-account authentication of Spryker's Glue Storefront API, as a service.",
    long_about = "Company-account authentication of Spryker's Glue Storefront API, as a \
                  service: customers log in, list their companies and exchange their token \
                  for a company-user token. Every option can also be set by its GLUE_AUTH_* \
                  environment variable."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum DocFormat {
    #[default]
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the API until SIGINT or SIGTERM (in-flight
    /// requests finish).
    Serve,
    /// Like `serve`, on its own SQLite file (`demo.db` in the data directory) loaded with the
    /// Acme demo dataset on first start; prints where Swagger UI is and the demo logins.
    Demo,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (the committed copy is `openapi/openapi.json`).
    Openapi {
        #[arg(long, value_enum, default_value_t)]
        format: DocFormat,
    },
    /// Import a YAML or JSON dataset in one transaction: all of it or nothing. The format is
    /// that of `demo/acme-demo.yaml`; a bad row is named by its line.
    Import {
        /// The dataset file.
        file: PathBuf,
    },
    /// Import a Spryker shop's customers (with their password hashes), companies, business
    /// units, addresses, roles and company users from its own database, in one transaction,
    /// keeping uuids and customer references. A re-run updates what changed and adds what is
    /// new; a row that cannot be imported is named and nothing is written.
    ImportSpryker {
        /// The shop's database: mysql://user:password@host/db or postgres://…
        #[arg(long, env = "GLUE_AUTH_SPRYKER_SOURCE_URL")]
        source_url: String,
        /// Do everything and roll it back: print what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete refresh tokens that have expired (live ones are never touched).
    PurgeTokens,
    /// Add customers, set their passwords, (de)activate them.
    #[command(subcommand)]
    Customer(admin::CustomerCommand),
    /// Add companies and set their status.
    #[command(subcommand)]
    Company(admin::CompanyCommand),
    /// Add business units.
    #[command(subcommand)]
    BusinessUnit(admin::BusinessUnitCommand),
    /// Add business-unit addresses.
    #[command(subcommand)]
    Address(admin::AddressCommand),
    /// Add company roles with their permissions.
    #[command(subcommand)]
    Role(admin::RoleCommand),
    /// Add company users, (de)activate them, choose a customer's default one.
    #[command(subcommand)]
    CompanyUser(admin::CompanyUserCommand),
    /// Add sales agents, set their passwords, (de)activate them.
    #[command(subcommand)]
    Agent(admin::AgentCommand),
}

pub use crate::app::BoxError;

/// Runs a parsed command line; the exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    telemetry::init(&cli.config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The origins `demo` lets browsers call it from: pages served on this machine.
const DEMO_ORIGINS: [&str; 2] = ["http://localhost:*", "http://127.0.0.1:*"];

async fn dispatch(cli: Cli) -> Result<(), BoxError> {
    let config = cli.config;
    match cli.command {
        Command::Serve => {
            let db = db::connect(&config.database_url_or("glue-auth.db"), &config).await?;
            let app = app::App::build(config, db).await?;
            tracing::info!(address = %app.local_addr(), "glue-auth is listening");
            app.run(app::shutdown_signal()).await?;
        }
        Command::Demo => {
            let mut config = config;
            if config.cors_allow_origins.is_empty() {
                config.cors_allow_origins = DEMO_ORIGINS.map(String::from).to_vec();
            }
            let db = db::connect(&config.database_url_or("demo.db"), &config).await?;
            let loaded = admin::load_demo(&db).await?;
            let outbox = config.smtp_url.is_none().then(|| config.data_dir.join("outbox"));
            let app = app::App::build(config, db).await?;
            let mut banner = admin::demo_banner(app.local_addr(), loaded)?;
            if let Some(outbox) = outbox {
                banner.push_str(&format!(
                    "Password-restore mail (POST /customer-forgotten-password) is written to\n  {}/\n",
                    outbox.display()
                ));
            }
            // One write, and a closed stdout (`glue-auth demo | head`) does not stop the
            // service.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
            app.run(app::shutdown_signal()).await?;
        }
        Command::Migrate => {
            db::connect(&config.database_url_or("glue-auth.db"), &config).await?;
            println!("the database is up to date");
        }
        Command::Openapi { format } => match format {
            DocFormat::Json => print!("{}", crate::api::document::json()),
            DocFormat::Yaml => print!("{}", crate::api::document::yaml()),
        },
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let db = db::connect(&config.database_url_or("glue-auth.db"), &config).await?;
            let policy = crate::service::password_policy::PasswordPolicy::of(&config);
            let s = dataset::import_text(&db, &text, &policy).await?;
            println!(
                "imported {} customers, {} companies, {} business units, {} addresses, {} roles, {} company users, {} agents",
                s.customers,
                s.companies,
                s.business_units,
                s.addresses,
                s.roles,
                s.company_users,
                s.agents
            );
        }
        Command::ImportSpryker { source_url, dry_run } => {
            let source = sea_orm::Database::connect(
                sea_orm::ConnectOptions::new(&source_url)
                    .max_connections(1)
                    .sqlx_logging(false)
                    .to_owned(),
            )
            .await
            .map_err(|e| format!("cannot connect to the Spryker database: {e}"))?;
            let db = db::connect(&config.database_url_or("glue-auth.db"), &config).await?;
            let mut progress = crate::spryker::progress::Terminal::new();
            let report = crate::spryker::import(&source, &db, dry_run, &mut progress).await?;
            print!("{}", crate::spryker::progress::summary(&report));
        }
        Command::PurgeTokens => {
            let db = db::connect(&config.database_url_or("glue-auth.db"), &config).await?;
            let now = crate::clock::now();
            let purged = crate::service::sessions::purge_expired(&db, now).await?;
            println!("purged {purged} expired refresh tokens");
            let policy = crate::service::throttle::Policy::for_purge(&config);
            let counters = crate::service::throttle::purge(&db, now, policy).await?;
            println!("purged {counters} spent login counters");
        }
        Command::Customer(cmd) => admin::customer(&config, cmd).await?,
        Command::Company(cmd) => admin::company(&config, cmd).await?,
        Command::BusinessUnit(cmd) => admin::business_unit(&config, cmd).await?,
        Command::Address(cmd) => admin::address(&config, cmd).await?,
        Command::Role(cmd) => admin::role(&config, cmd).await?,
        Command::CompanyUser(cmd) => admin::company_user(&config, cmd).await?,
        Command::Agent(cmd) => admin::agent(&config, cmd).await?,
    }
    Ok(())
}
