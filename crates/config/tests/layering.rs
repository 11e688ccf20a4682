//! Settings layering as a service sees it: defaults, then the file, then the environment, then secret files.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use adloop_config::{
    CONFIG_FILE_VARIABLE, ConfigError, DatabaseSettings, EnvironmentVariables, Secret, ServerSettings, load_settings,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct ExampleSettings {
    server: ServerSettings,
    database: DatabaseSettings,
    api: ApiSettings,
}

#[derive(Debug, Deserialize)]
struct ApiSettings {
    token: Secret<String>,
    request_timeout_ms: u64,
}

const DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 8080
shutdown_grace_seconds = 10

[database]
schema = "example"
max_connections = 5
connect_timeout_seconds = 5

[api]
request_timeout_ms = 3000
"#;

fn required_variables() -> Vec<(String, String)> {
    vec![
        (
            "ADLOOP_DATABASE__URL".into(),
            "postgres://adloop@127.0.0.1:55432/adloop".into(),
        ),
        ("ADLOOP_API__TOKEN".into(), "token-from-env".into()),
    ]
}

fn load(variables: Vec<(String, String)>) -> Result<ExampleSettings, ConfigError> {
    load_settings(DEFAULTS, &EnvironmentVariables::from_pairs(variables))
}

#[test]
fn compiled_defaults_apply_when_nothing_overrides_them() {
    let settings = load(required_variables()).unwrap();
    assert_eq!(settings.server.port, 8080);
    assert_eq!(settings.server.host, "127.0.0.1");
    assert_eq!(settings.api.request_timeout_ms, 3000);
    assert_eq!(settings.database.schema, "example");
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() {
    let directory = tempfile::tempdir().unwrap();
    let file_path = directory.path().join("adloop.toml");
    std::fs::write(&file_path, "[server]\nport = 9000\nhost = \"0.0.0.0\"\n").unwrap();

    let mut variables = required_variables();
    variables.push((CONFIG_FILE_VARIABLE.into(), file_path.display().to_string()));
    variables.push(("ADLOOP_SERVER__PORT".into(), "9100".into()));
    let settings = load(variables).unwrap();

    assert_eq!(settings.server.host, "0.0.0.0", "the file overrides the default host");
    assert_eq!(settings.server.port, 9100, "the environment overrides the file's port");
}

#[test]
fn secret_is_read_from_a_file_path_without_its_trailing_newline() {
    let directory = tempfile::tempdir().unwrap();
    let secret_path = directory.path().join("api-token");
    std::fs::write(&secret_path, "token-from-file\n").unwrap();

    let variables = vec![
        (
            "ADLOOP_DATABASE__URL".to_owned(),
            "postgres://adloop@127.0.0.1:55432/adloop".to_owned(),
        ),
        ("ADLOOP_API__TOKEN_FILE".to_owned(), secret_path.display().to_string()),
    ];
    let settings = load(variables).unwrap();

    assert_eq!(settings.api.token.expose(), "token-from-file");
    assert_eq!(format!("{:?}", settings.api.token), "[redacted]");
}

#[test]
fn unreadable_secret_file_names_the_key() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_API__TOKEN_FILE".into(), "/nonexistent/adloop/secret".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("api.token"), "{error}");
}

#[test]
fn bad_value_names_the_key() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_SERVER__PORT".into(), "not-a-port".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("server.port"), "{error}");
}

#[test]
fn out_of_range_value_names_the_key() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_SERVER__PORT".into(), "70000".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("server.port"), "{error}");
}

#[test]
fn missing_required_value_names_the_key() {
    let variables = vec![("ADLOOP_API__TOKEN".to_owned(), "token".to_owned())];
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("database.url"), "{error}");
}

#[test]
fn missing_config_file_names_the_path() {
    let mut variables = required_variables();
    variables.push((CONFIG_FILE_VARIABLE.into(), "/nonexistent/adloop.toml".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/adloop.toml"), "{error}");
}

#[test]
fn database_settings_reject_a_non_postgres_url_naming_the_key() {
    let mut variables = required_variables();
    variables[0].1 = "mysql://root@localhost/db".into();
    let settings = load(variables).unwrap();
    let error = settings.database.validate().unwrap_err().to_string();
    assert!(error.contains("database.url"), "{error}");
    assert!(
        !error.contains("root@localhost"),
        "the url may carry a password and must not be echoed: {error}"
    );
}

#[test]
fn database_settings_reject_a_schema_that_is_not_an_identifier() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_DATABASE__SCHEMA".into(), "drop table;".into()));
    let settings = load(variables).unwrap();
    let error = settings.database.validate().unwrap_err().to_string();
    assert!(error.contains("database.schema"), "{error}");
}

#[test]
fn unrelated_adloop_variables_are_ignored() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_GATEWAY_URL".into(), "http://127.0.0.1:8080".into()));
    assert!(load(variables).is_ok());
}

#[test]
fn a_misspelt_setting_is_refused_naming_its_variable() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_API__REQUEST_TIMEOUT_MILLIS".into(), "100".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("api.request_timeout_millis"), "{error}");
    assert!(error.contains("ADLOOP_API__REQUEST_TIMEOUT_MILLIS"), "{error}");
}

#[test]
fn a_section_the_service_does_not_have_is_refused() {
    let mut variables = required_variables();
    variables.push(("ADLOOP_EXECUTOR__WORKERS".into(), "4".into()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("`executor`"), "{error}");
    assert!(error.contains("ADLOOP_EXECUTOR__WORKERS"), "{error}");
}

#[test]
fn a_secret_file_for_an_unknown_key_is_refused_naming_its_variable() {
    let directory = tempfile::tempdir().unwrap();
    let secret_path = directory.path().join("token");
    std::fs::write(&secret_path, "value").unwrap();
    let mut variables = required_variables();
    variables.push(("ADLOOP_API__TOKN_FILE".into(), secret_path.display().to_string()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("ADLOOP_API__TOKN_FILE"), "{error}");
    assert!(!error.contains("value"), "the secret is never echoed: {error}");
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let file_path = directory.path().join("adloop.toml");
    std::fs::write(&file_path, "[server]\nprot = 9000\n").unwrap();
    let mut variables = required_variables();
    variables.push((CONFIG_FILE_VARIABLE.into(), file_path.display().to_string()));
    let error = load(variables).unwrap_err().to_string();
    assert!(error.contains("server.prot"), "{error}");
    assert!(error.contains(CONFIG_FILE_VARIABLE), "{error}");
}

#[test]
fn a_loader_that_reads_one_section_accepts_the_other_compiled_defaults() {
    #[derive(Debug, Deserialize)]
    struct OnlyApi {
        api: ApiSettingsWithoutToken,
    }
    #[derive(Debug, Deserialize)]
    struct ApiSettingsWithoutToken {
        request_timeout_ms: u64,
    }
    let settings: OnlyApi = load_settings(DEFAULTS, &EnvironmentVariables::default()).unwrap();
    assert_eq!(settings.api.request_timeout_ms, 3000);
}
