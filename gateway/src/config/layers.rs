//! How the settings are layered: the defaults of [`Config`] serialized to a tree, the TOML file
//! over it, then `FHIRGATE_*` variables and flags, each naming one leaf of the tree, deserialized
//! back into [`Config`]. The names of the variables derive from the keys (`FHIRGATE_<SECTION>_<KEY>`,
//! plus the short forms of [`short_names`]), so a new setting needs no code here; every leaf
//! remembers where its value came from for `fhirgate config`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::{Config, Overrides};
use crate::error::GatewayError;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The source of every setting that is not at its default, by dotted key (`server.listen`).
pub type Sources = BTreeMap<String, Source>;

/// `FHIRGATE_*` variables the project's scripts and tests use that are not settings: they may be
/// in the server's environment (a test runner's, a benchmark's) and must not stop it. An explicit
/// list rather than "ignore what does not look like a setting", so that a mistyped setting
/// (`FHIRGATE_MAX_BODY_BYTE`) is refused instead of silently ignored.
const NOT_SETTINGS: [&str; 5] =
    ["FHIRGATE_CONFIG", "FHIRGATE_BIN", "FHIRGATE_CACHE", "FHIRGATE_E2E_STORE", "FHIRGATE_CONFORMANCE_BASE_URL"];
/// Families of such variables (`FHIRGATE_TEST_POSTGRES_URL`, `FHIRGATE_BENCH_KEEP_DATA`, ...).
const NOT_SETTING_PREFIXES: [&str; 2] = ["FHIRGATE_TEST_", "FHIRGATE_BENCH_"];

/// The variables that together add one trusted issuer (containers without a config file); the
/// first is required, the others are its fields.
const ISSUER_VARS: [&str; 5] = [
    "FHIRGATE_AUTH_ISSUER",
    "FHIRGATE_AUTH_AUDIENCES",
    "FHIRGATE_AUTH_ALLOWED_TENANTS",
    "FHIRGATE_AUTH_ALLOW_ANY_TENANT",
    "FHIRGATE_AUTH_DISCOVERY_URL",
];

/// Leaves no variable sets: the list of issuers (see [`ISSUER_VARS`]), and the arrays of tables
/// `[[targets]]`, `[[routes]]` and `[[smart.proxy.clients]]`, which only a TOML file gives (their variables are unknown
/// names, refused like any other).
const NOT_FROM_ENV: [&str; 4] = ["auth.issuers", "targets", "routes", "smart.proxy.clients"];

/// The names of the setting at dotted `key` besides the canonical `FHIRGATE_<SECTION>_<KEY>`:
/// the short forms documented since the first release.
fn short_names(key: &str) -> Vec<String> {
    let upper = |s: &str| s.replace('.', "_").to_uppercase();
    let mut names = Vec::new();
    match key {
        "store.url" => names.push("FHIRGATE_STORE".to_owned()),
        "store.data_dir" => names.push("FHIRGATE_DATA_DIR".to_owned()),
        _ => {}
    }
    for (section, prefix) in [("server.", "FHIRGATE_"), ("fhir.", "FHIRGATE_"), ("store.cosmos.", "FHIRGATE_COSMOS_")] {
        if let Some(rest) = key.strip_prefix(section) {
            names.push(format!("{prefix}{}", upper(rest)));
        }
    }
    names
}

/// Every settable leaf of the configuration: its dotted key, its default value (which tells how
/// a variable's text is read) and the variables naming it.
pub fn env_names() -> Result<Vec<(String, Value, Vec<String>)>, GatewayError> {
    let mut leaves = Vec::new();
    collect_leaves("", &to_tree(&Config::default())?, &mut leaves);
    Ok(leaves
        .into_iter()
        .filter(|(key, _)| !NOT_FROM_ENV.contains(&key.as_str()))
        .map(|(key, default)| {
            let mut names = vec![format!("FHIRGATE_{}", key.replace('.', "_").to_uppercase())];
            names.extend(short_names(&key));
            (key, default, names)
        })
        .collect())
}

fn to_tree(config: &Config) -> Result<Value, GatewayError> {
    serde_json::to_value(config).map_err(|e| GatewayError::Config(e.to_string()))
}

/// The leaves (non-table values, arrays included) under `tree`, in declaration order.
fn collect_leaves(prefix: &str, tree: &Value, out: &mut Vec<(String, Value)>) {
    match tree {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                collect_leaves(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_owned(), leaf.clone())),
    }
}

/// The keys a TOML document sets (tables walked, arrays of tables taken whole).
fn toml_keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => toml_keys(&key, t, out),
            _ => out.push(key),
        }
    }
}

fn set(tree: &mut Value, key: &str, value: Value) -> Result<(), GatewayError> {
    let mut node = tree;
    for part in key.split('.') {
        node = node.get_mut(part).ok_or_else(|| GatewayError::Config(format!("no setting `{key}`")))?;
    }
    *node = value;
    Ok(())
}

fn list(text: &str) -> Value {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect()
}

/// A variable's text read as the type of the setting's default. An unset optional setting has no
/// type to go by: `true`/`false` is a boolean there (`auth.local_issuer`), anything else text
/// (every other optional setting is a URL, a path or an id).
fn typed(name: &str, text: &str, default: &Value) -> Result<Value, GatewayError> {
    let invalid = || GatewayError::Config(format!("invalid value `{text}` for `{name}`"));
    Ok(match default {
        Value::Bool(_) => Value::Bool(text.parse().map_err(|_| invalid())?),
        Value::Number(_) => match (text.parse::<u64>(), text.parse::<i64>()) {
            (Ok(n), _) => Value::from(n),
            (_, Ok(n)) => Value::from(n),
            _ => Value::from(text.parse::<f64>().map_err(|_| invalid())?),
        },
        Value::Array(_) => list(text),
        Value::Null => match text {
            "true" | "false" => Value::Bool(text == "true"),
            _ => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    })
}

/// Builds the configuration and the source of each value: defaults, file, environment, flags.
pub fn build(
    file: Option<&Path>,
    env: &HashMap<String, String>,
    flags: Overrides,
) -> Result<(Config, Sources), GatewayError> {
    let mut sources = Sources::new();
    let base = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Config(format!("cannot read `{}`: {e}", path.display())))?;
            let at = |e: toml::de::Error| GatewayError::Config(format!("`{}`: {e}", path.display()));
            // Typed first: unknown keys and wrong types are reported with their line.
            let config: Config = toml::from_str(&text).map_err(at)?;
            let mut keys = Vec::new();
            toml_keys("", &toml::from_str(&text).map_err(at)?, &mut keys);
            sources.extend(keys.into_iter().map(|k| (k, Source::File)));
            config
        }
        None => Config::default(),
    };
    let mut tree = to_tree(&base)?;
    let check = |tree: &Value, what: &str| {
        serde_json::from_value::<Config>(tree.clone())
            .map_err(|e| GatewayError::Config(format!("invalid value for `{what}`: {e}")))
    };

    apply_env(&mut tree, &mut sources, env, check)?;
    if let Some(issuer) = env_issuer(env)? {
        if let Some(Value::Array(issuers)) = tree.pointer_mut("/auth/issuers") {
            issuers.push(issuer);
        }
        check(&tree, ISSUER_VARS[0])?;
        sources.insert("auth.issuers".to_owned(), Source::Env(ISSUER_VARS[0].to_owned()));
    }

    let path_text = |p: std::path::PathBuf| {
        p.into_os_string().into_string().map_err(|_| GatewayError::Config("`--data-dir` is not UTF-8".into()))
    };
    let flagged = [
        ("server.listen", "--listen", flags.listen),
        ("store.url", "--store", flags.store),
        ("store.data_dir", "--data-dir", flags.data_dir.map(path_text).transpose()?),
    ];
    for (key, flag, value) in flagged {
        if let Some(value) = value {
            set(&mut tree, key, Value::String(value))?;
            sources.insert(key.to_owned(), Source::Flag(flag));
        }
    }
    Ok((check(&tree, "flags")?, sources))
}

/// Sets the leaf each `FHIRGATE_*` setting variable names; refuses unknown ones and two names of
/// one setting. `check` deserializes the tree, so a bad value is reported with its variable.
fn apply_env(
    tree: &mut Value,
    sources: &mut Sources,
    env: &HashMap<String, String>,
    check: impl Fn(&Value, &str) -> Result<Config, GatewayError>,
) -> Result<(), GatewayError> {
    let settings = env_names()?;
    let by_name: HashMap<&str, (&str, &Value)> = settings
        .iter()
        .flat_map(|(key, default, names)| names.iter().map(move |n| (n.as_str(), (key.as_str(), default))))
        .collect();
    let mut vars: Vec<(&String, &String)> = env.iter().filter(|(n, _)| n.starts_with("FHIRGATE_")).collect();
    vars.sort();
    for (name, text) in vars {
        if NOT_SETTINGS.contains(&name.as_str())
            || NOT_SETTING_PREFIXES.iter().any(|p| name.starts_with(p))
            || ISSUER_VARS.contains(&name.as_str())
        {
            continue;
        }
        let Some((key, default)) = by_name.get(name.as_str()) else {
            return Err(unknown_variable(name, by_name.keys().copied()));
        };
        if let Some(Source::Env(other)) = sources.get(*key) {
            return Err(GatewayError::Config(format!("`{other}` and `{name}` both set `{key}`: keep one")));
        }
        set(tree, key, typed(name, text, default)?)?;
        check(tree, name)?;
        sources.insert((*key).to_owned(), Source::Env(name.clone()));
    }
    Ok(())
}

/// The issuer the [`ISSUER_VARS`] describe, if `FHIRGATE_AUTH_ISSUER` is set.
fn env_issuer(env: &HashMap<String, String>) -> Result<Option<Value>, GatewayError> {
    let Some(issuer) = env.get(ISSUER_VARS[0]).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let get = |name: &str| env.get(name).map(String::as_str);
    let allow_any_tenant = match get("FHIRGATE_AUTH_ALLOW_ANY_TENANT") {
        Some(v) => typed("FHIRGATE_AUTH_ALLOW_ANY_TENANT", v, &Value::Bool(false))?,
        None => Value::Bool(false),
    };
    Ok(Some(serde_json::json!({
        "issuer": issuer,
        "audiences": list(get("FHIRGATE_AUTH_AUDIENCES").unwrap_or_default()),
        "allowed_tenants": list(get("FHIRGATE_AUTH_ALLOWED_TENANTS").unwrap_or_default()),
        "allow_any_tenant": allow_any_tenant,
        "discovery_url": get("FHIRGATE_AUTH_DISCOVERY_URL"),
    })))
}

fn unknown_variable<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> GatewayError {
    let known = known.chain(ISSUER_VARS);
    let closest = known.map(|k| (distance(name, k), k)).min().filter(|(d, _)| *d <= 3);
    let hint = closest.map(|(_, k)| format!(" (did you mean `{k}`?)")).unwrap_or_default();
    GatewayError::Config(format!(
        "unknown environment variable `{name}`{hint}: every setting and its variable is in \
         deploy/fhirgate.example.toml"
    ))
}

/// Edit distance of two names (bounded: longer names than any setting's are simply far).
fn distance(a: &str, b: &str) -> usize {
    if a.len() > 80 || b.len() > 80 {
        return usize::MAX;
    }
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// One line per setting, `key = value  # source`, valid TOML (dotted keys); unset optional
/// settings are commented out. The store URL is the effective one, its password redacted.
pub fn describe(config: &Config, sources: &Sources) -> Result<String, GatewayError> {
    let mut shown = config.clone();
    shown.store.url = Some(fhirgate_engine::storage::redact_url(&config.store_url()));
    shown.tracing = config.tracing.shown();
    for target in &mut shown.targets {
        target.store = target.store.as_deref().map(fhirgate_engine::storage::redact_url);
    }
    let mut leaves = Vec::new();
    collect_leaves("", &to_tree(&shown)?, &mut leaves);
    let mut out = String::new();
    for (key, value) in leaves {
        let source = sources.get(&key).unwrap_or(&Source::Default);
        if value.is_null() {
            out.push_str(&format!("# {key} is unset  # {source}\n"));
            continue;
        }
        let value = to_toml(value);
        out.push_str(&format!("{key} = {value}  # {source}\n"));
    }
    Ok(out)
}

/// A leaf as TOML. Unset fields inside it (an issuer's `discovery_url`) are left out: TOML has
/// no null. The depth is that of [`Config`]'s types.
fn to_toml(value: Value) -> toml::Value {
    match value {
        Value::Null => toml::Value::String(String::new()),
        Value::Bool(b) => toml::Value::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::String(n.to_string()),
        },
        Value::String(s) => toml::Value::String(s),
        Value::Array(items) => toml::Value::Array(items.into_iter().map(to_toml).collect()),
        Value::Object(map) => {
            toml::Value::Table(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, to_toml(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests;
