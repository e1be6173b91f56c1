//! The layering of settings: every section from the environment, unknown names refused, sources.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<(Config, Sources), GatewayError> {
    Config::load_with_sources(None, &env(pairs), Overrides::default())
}

fn temp_file(name: &str, text: &str) -> Result<PathBuf, GatewayError> {
    let path = std::env::temp_dir().join(format!("fhirgate-layers-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).map_err(|e| GatewayError::Config(e.to_string()))?;
    Ok(path)
}

#[test]
fn every_section_is_settable_by_its_canonical_variable() -> Result<(), GatewayError> {
    let (c, sources) = load(&[
        ("FHIRGATE_SERVER_THREADS", "3"),
        ("FHIRGATE_STORE_POOL_SIZE", "4"),
        ("FHIRGATE_STORE_COSMOS_DATABASE", "db2"),
        ("FHIRGATE_FHIR_MAX_PAGE_SIZE", "50"),
        ("FHIRGATE_AUTH_JWKS_MAX_AGE_SECONDS", "60"),
        ("FHIRGATE_AUTH_TOKEN_CACHE_SIZE", "7"),
        ("FHIRGATE_POLICY_RELOAD_SECONDS", "9"),
        ("FHIRGATE_LOG_FORMAT", "json"),
        ("FHIRGATE_METRICS_PUBLIC", "true"),
    ])?;
    assert_eq!((c.server.threads, c.store.pool_size, c.store.cosmos.database.as_str()), (3, 4, "db2"));
    assert_eq!((c.fhir.max_page_size, c.auth.jwks_max_age_seconds, c.auth.token_cache_size), (50, 60, 7));
    assert_eq!((c.policy.reload_seconds, c.log.format.as_str(), c.metrics.public), (9, "json", true));
    assert_eq!(sources.get("auth.token_cache_size"), Some(&Source::Env("FHIRGATE_AUTH_TOKEN_CACHE_SIZE".into())));
    assert_eq!(sources.get("server.listen"), None, "untouched settings are defaults");
    Ok(())
}

#[test]
fn the_short_forms_still_work() -> Result<(), GatewayError> {
    let (c, _) = load(&[
        ("FHIRGATE_LISTEN", "127.0.0.1:9"),
        ("FHIRGATE_STORE", "sqlite::memory:"),
        ("FHIRGATE_DATA_DIR", "/tmp/d"),
        ("FHIRGATE_COSMOS_PARTITION", "p"),
        ("FHIRGATE_COSMOS_SEARCH_QUERIES", "exists"),
        ("FHIRGATE_UPDATE_CREATE", "false"),
        ("FHIRGATE_ALLOWED_HOSTS", "a, b:1"),
        ("FHIRGATE_BASE_URL", "https://x"),
        ("FHIRGATE_POLICY_DIR", "/tmp/p"),
        ("FHIRGATE_AUTH_LOCAL_ISSUER", "true"),
    ])?;
    assert_eq!(c.server.listen, "127.0.0.1:9");
    assert_eq!(c.store_url(), "sqlite::memory:");
    assert_eq!(c.store.data_dir, PathBuf::from("/tmp/d"));
    assert_eq!(c.store.cosmos.partition, "p");
    assert_eq!(c.store.cosmos.search_queries, "exists");
    assert!(!c.fhir.update_create);
    assert_eq!(c.server.allowed_hosts, ["a", "b:1"]);
    assert_eq!(c.server.base_url.as_deref(), Some("https://x"));
    assert_eq!(c.policy.dir, Some(PathBuf::from("/tmp/p")));
    assert_eq!(c.auth.local_issuer, Some(true));
    Ok(())
}

#[test]
fn every_variable_name_is_unique() -> Result<(), GatewayError> {
    let mut seen = HashMap::new();
    for (key, _, names) in env_names()? {
        for name in names {
            assert!(!ISSUER_VARS.contains(&name.as_str()), "{name} is an issuer variable");
            let other = seen.insert(name.clone(), key.clone());
            assert!(other.is_none(), "{name} names both {other:?} and {key}");
        }
    }
    assert!(seen.len() > 60, "{seen:?}");
    Ok(())
}

#[test]
fn unknown_variables_are_refused_with_the_closest_name() {
    let err = load(&[("FHIRGATE_MAX_BODY_BYTE", "10")]);
    assert!(
        matches!(&err, Err(GatewayError::Config(m)) if m.contains("`FHIRGATE_MAX_BODY_BYTE`") && m.contains("did you mean `FHIRGATE_MAX_BODY_BYTES`")),
        "{err:?}"
    );
    let err = load(&[("FHIRGATE_WHATEVER_SOMETHING_ELSE_ENTIRELY", "1")]);
    assert!(
        matches!(&err, Err(GatewayError::Config(m)) if m.contains("FHIRGATE_WHATEVER") && !m.contains("did you mean"))
    );
}

#[test]
fn the_projects_own_variables_are_not_settings() -> Result<(), GatewayError> {
    load(&[
        ("FHIRGATE_BIN", "/x"),
        ("FHIRGATE_CONFIG", "/nowhere.toml"),
        ("FHIRGATE_E2E_STORE", "postgres"),
        ("FHIRGATE_TEST_POSTGRES_URL", "postgres://x"),
        ("FHIRGATE_BENCH_KEEP_DATA", "1"),
        ("FHIRGATE_CACHE", "/tmp"),
        ("FHIRGATE_CONFORMANCE_BASE_URL", "http://x"),
        ("OTHER_VARIABLE", "anything"),
    ])?;
    Ok(())
}

#[test]
fn two_names_of_one_setting_conflict() {
    let err = load(&[("FHIRGATE_LISTEN", "127.0.0.1:1"), ("FHIRGATE_SERVER_LISTEN", "127.0.0.1:2")]);
    assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("both set `server.listen`")), "{err:?}");
}

#[test]
fn values_out_of_range_name_their_variable() {
    let err = load(&[("FHIRGATE_MAX_PAGE_SIZE", "99999999999")]);
    assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("FHIRGATE_MAX_PAGE_SIZE")), "{err:?}");
    let err = load(&[("FHIRGATE_METRICS_PUBLIC", "yes")]);
    assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("FHIRGATE_METRICS_PUBLIC")), "{err:?}");
}

#[test]
fn unknown_file_keys_are_refused_with_their_name() -> Result<(), GatewayError> {
    let path = temp_file("unknown", "[server]\nlisen = \"127.0.0.1:1\"\n")?;
    let err = Config::load(Some(&path), &env(&[]), Overrides::default());
    let _ = std::fs::remove_file(&path);
    assert!(
        matches!(&err, Err(GatewayError::Config(m)) if m.contains("unknown field `lisen`") && m.contains("`listen`")),
        "{err:?}"
    );
    let path = temp_file("section", "[serve]\nlisten = \"127.0.0.1:1\"\n")?;
    let err = Config::load(Some(&path), &env(&[]), Overrides::default());
    let _ = std::fs::remove_file(&path);
    assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("unknown field `serve`")), "{err:?}");
    Ok(())
}

#[test]
fn the_description_names_each_source() -> Result<(), GatewayError> {
    let path = temp_file("sources", "[fhir]\ndefault_page_size = 7\n[auth]\npatient_claim = \"pid\"\n")?;
    let vars = env(&[
        ("FHIRGATE_AUTH_CLOCK_SKEW_SECONDS", "5"),
        ("FHIRGATE_STORE", "postgres://u:hunter2@db/fhir"),
        ("FHIRGATE_AUTH_ISSUER", "https://idp.example"),
        ("FHIRGATE_AUTH_AUDIENCES", "api"),
    ]);
    let flags = Overrides { listen: Some("127.0.0.1:3".into()), ..Overrides::default() };
    let result = Config::load_with_sources(Some(&path), &vars, flags);
    let _ = std::fs::remove_file(&path);
    let (c, sources) = result?;
    let text = c.describe(&sources)?;
    let line = |key: &str| text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_default().to_owned();
    assert_eq!(line("fhir.default_page_size"), "fhir.default_page_size = 7  # file");
    assert_eq!(line("auth.patient_claim"), "auth.patient_claim = \"pid\"  # file");
    assert_eq!(line("auth.clock_skew_seconds"), "auth.clock_skew_seconds = 5  # env FHIRGATE_AUTH_CLOCK_SKEW_SECONDS");
    assert_eq!(line("server.listen"), "server.listen = \"127.0.0.1:3\"  # flag --listen");
    assert_eq!(line("server.threads"), "server.threads = 2  # default");
    assert!(line("store.url").ends_with("# env FHIRGATE_STORE") && !text.contains("hunter2"), "{text}");
    assert!(line("auth.issuers").contains("https://idp.example"), "{text}");
    assert!(text.contains("# server.base_url is unset  # default"), "{text}");
    let reparsed: toml::Table = toml::from_str(&text).map_err(|e| GatewayError::Config(e.to_string()))?;
    assert!(reparsed.contains_key("auth"), "the description is TOML");
    Ok(())
}
