//! Helpers for adloop's integration tests. Tests run against the real Postgres and Redis of the dev stack
//! (`scripts/dev-stack up`, which `make test` runs first); each test gets a database of its own.
//!
//! `ADLOOP_TEST_POSTGRES_URL` (default `postgres://adloop@127.0.0.1:55432/postgres`) names the server and a
//! maintenance database; `ADLOOP_TEST_REDIS_URL` (default `redis://127.0.0.1:56379`) names Redis.

mod creatives;

pub use creatives::four_feature_creatives;

use adloop_config::EnvironmentVariables;
use sqlx::Connection as _;

/// Test databases carry this prefix so `scripts/dev-stack drop-test-databases` can remove them.
pub const TEST_DATABASE_PREFIX: &str = "adloop_test_";

const DEFAULT_POSTGRES_URL: &str = "postgres://adloop@127.0.0.1:55432/postgres";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:56379";

pub fn postgres_server_url() -> String {
    std::env::var("ADLOOP_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

pub fn redis_url() -> String {
    std::env::var("ADLOOP_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// A freshly created, empty database on the test server.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates a new database with a unique name. Panics with a hint when the dev stack is not running.
    pub async fn create() -> TestDatabase {
        let server_url = postgres_server_url();
        let mut maintenance_connection = sqlx::PgConnection::connect(&server_url).await.unwrap_or_else(|error| {
            panic!("cannot reach test postgres at {server_url} ({error}); run `scripts/dev-stack up` or `make test`")
        });
        let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut maintenance_connection)
            .await
            .expect("create test database");
        let url = replace_database_in_url(&server_url, &name);
        TestDatabase { name, url }
    }

    /// Drops the database (its connections are closed first). Benchmarks fill large tables: they drop their
    /// database when done instead of leaving it for `scripts/dev-stack drop-test-databases`.
    pub async fn drop_database(self) -> Result<(), sqlx::Error> {
        let mut maintenance_connection = sqlx::PgConnection::connect(&postgres_server_url()).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut maintenance_connection)
        .await?;
        Ok(())
    }
}

fn replace_database_in_url(server_url: &str, database_name: &str) -> String {
    let without_query = server_url.split('?').next().unwrap_or(server_url);
    let (server_part, _) = without_query
        .rsplit_once('/')
        .expect("postgres url has a database path");
    format!("{server_part}/{database_name}")
}

/// The environment a service under test reads its settings from: the test database, port 0 and quiet logs,
/// plus any overrides (ml-service adds `ADLOOP_REDIS__URL` with [`redis_url`]; the others have no Redis).
pub fn service_environment(database: &TestDatabase, overrides: &[(&str, &str)]) -> EnvironmentVariables {
    let mut pairs: Vec<(String, String)> = vec![
        ("ADLOOP_SERVER__HOST".into(), "127.0.0.1".into()),
        ("ADLOOP_SERVER__PORT".into(), "0".into()),
        ("ADLOOP_DATABASE__URL".into(), database.url.clone()),
        ("ADLOOP_DATABASE__MAX_CONNECTIONS".into(), "4".into()),
    ];
    for (key, value) in overrides {
        pairs.push(((*key).to_owned(), (*value).to_owned()));
    }
    EnvironmentVariables::from_pairs(pairs)
}

/// The values of the enum schema `schema_name` under `components.schemas` of an OpenAPI document, in the
/// document's order: what a service's tests hold to the values its code accepts.
pub fn openapi_schema_enum(openapi_document: &str, schema_name: &str) -> Vec<String> {
    let document: serde_json::Value = serde_json::from_str(openapi_document).expect("the OpenAPI document is JSON");
    document["components"]["schemas"][schema_name]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("a {schema_name} schema with an enum"))
        .iter()
        .map(|value| value.as_str().expect("an enum of strings").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_maintenance_database() {
        assert_eq!(
            replace_database_in_url("postgres://adloop@127.0.0.1:55432/postgres", "adloop_test_1"),
            "postgres://adloop@127.0.0.1:55432/adloop_test_1"
        );
    }
}
