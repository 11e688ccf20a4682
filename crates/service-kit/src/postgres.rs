//! Each service owns one PostgreSQL schema. Its connections use that schema as `search_path`, and its
//! migration history (`_sqlx_migrations`) lives there too, so services sharing a database never see each
//! other's migrations.

use std::str::FromStr as _;
use std::time::Duration;

use adloop_config::DatabaseSettings;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("invalid value for `database.url`: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot connect to postgres (database.url): {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot create schema `{schema}`: {source}")]
    CreateSchema {
        schema: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "schema `{schema}` lacks {missing} of this build's migrations (database.migrate_on_start is off): run \
         the service's `migrate` command first"
    )]
    MigrationsPending { schema: String, missing: usize },
    #[error("cannot read the applied migrations of schema `{schema}`: {source}")]
    ReadMigrations {
        schema: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot run migrations in schema `{schema}`: {source}")]
    Migrate {
        schema: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// How a service connects at start-up: it applies its migrations itself (`database.migrate_on_start`, the
/// default), or, where a separate step runs `<service> migrate` first (a Kubernetes init container, a
/// Cloud Run job) so the serving role needs no DDL rights, it checks that every migration is in place.
pub async fn connect_for_serving(settings: &DatabaseSettings, migrator: &Migrator) -> Result<PgPool, DatabaseError> {
    if settings.migrate_on_start {
        return connect_and_migrate(settings, migrator).await;
    }
    let pool = connect(settings).await?;
    let applied = applied_migration_versions(&pool)
        .await
        .map_err(|source| DatabaseError::ReadMigrations {
            schema: settings.schema.clone(),
            source,
        })?;
    let missing = migrator
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .count();
    if missing > 0 {
        return Err(DatabaseError::MigrationsPending {
            schema: settings.schema.clone(),
            missing,
        });
    }
    Ok(pool)
}

/// The versions applied in the schema; none where nobody migrated it (it has no history table).
async fn applied_migration_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    let history_exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !history_exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
}

/// Connects to the service's schema (creating it when missing) and applies the service's migrations.
pub async fn connect_and_migrate(settings: &DatabaseSettings, migrator: &Migrator) -> Result<PgPool, DatabaseError> {
    let pool = connect(settings).await?;
    // The schema name was validated as a plain identifier when settings were loaded.
    let create_schema = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", settings.schema);
    sqlx::query(sqlx::AssertSqlSafe(create_schema))
        .execute(&pool)
        .await
        .map_err(|source| DatabaseError::CreateSchema {
            schema: settings.schema.clone(),
            source,
        })?;
    migrator.run(&pool).await.map_err(|source| DatabaseError::Migrate {
        schema: settings.schema.clone(),
        source,
    })?;
    Ok(pool)
}

/// A pool on the service's schema (`search_path`).
async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DatabaseError> {
    let connect_options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(DatabaseError::InvalidUrl)?
        // JIT compilation only pays for long analytical queries; for these services' short ones it cost up to
        // 100 ms whenever the planner overestimated a query (relay-bench's claims).
        .options([("search_path", settings.schema.as_str()), ("jit", "off")]);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.connect_timeout_seconds))
        .connect_with(connect_options)
        .await
        .map_err(DatabaseError::Connect)?;
    Ok(pool)
}

/// True when the database answers a trivial query.
pub async fn database_answers(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}
