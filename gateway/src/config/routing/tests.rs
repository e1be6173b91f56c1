//! The routing table's defaults and each refusal at start, with the message naming the problem.

use std::collections::HashMap;

use super::super::{Config, Overrides};
use crate::error::GatewayError;

fn load_toml(name: &str, text: &str) -> Result<Config, GatewayError> {
    let path = std::env::temp_dir().join(format!("fhirgate-routing-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).map_err(|e| GatewayError::Config(e.to_string()))?;
    let loaded = Config::load(Some(&path), &HashMap::new(), Overrides::default());
    let _ = std::fs::remove_file(&path);
    loaded
}

const TWO_TARGETS: &str = r#"
[[targets]]
id = "a"
store = "sqlite::memory:"
[[targets]]
id = "lab"
base_url = "https://lab.example/fhir"
"#;

/// The error of a table made of [`TWO_TARGETS`] and `routes`.
fn refusal(name: &str, routes: &str) -> String {
    match load_toml(name, &format!("{TWO_TARGETS}{routes}")) {
        Ok(_) => "accepted".to_owned(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn without_targets_and_routes_one_local_target_serves_everything() -> Result<(), GatewayError> {
    let c = Config::load(None, &HashMap::new(), Overrides::default())?;
    let targets = c.targets();
    assert_eq!(targets.len(), 1);
    assert_eq!((targets[0].id.as_str(), targets[0].store.as_deref()), ("default", Some("sqlite:./data/fhirgate.db")));
    let routes = c.routes();
    assert_eq!(
        (routes[0].id.as_str(), routes[0].prefix.as_str(), &routes[0].targets),
        ("default", "", &vec!["default".to_owned()])
    );
    assert_eq!(c.paging_key_file(), std::path::PathBuf::from("./data/paging.key"));
    Ok(())
}

#[test]
fn targets_without_routes_get_one_route_over_all() -> Result<(), GatewayError> {
    let c = load_toml("all", TWO_TARGETS)?;
    assert_eq!(c.routes()[0].targets, ["a", "lab"]);
    assert_eq!(c.routes()[0].write_target(), Some("a"));
    Ok(())
}

#[test]
fn a_full_table_loads_and_is_described_without_secrets() -> Result<(), GatewayError> {
    let c = load_toml(
        "full",
        &format!(
            "[[targets]]\nid = \"pg\"\nstore = \"postgres://u:hunter2@db/fhir\"\n{TWO_TARGETS}\
         [[routes]]\nid = \"card\"\nprefix = \"cardiology\"\ntargets = [\"a\", \"lab\"]\n\
         id_prefixes = {{ lab = \"LAB-\" }}\n\
         [[routes]]\nid = \"tenant\"\nprefix = \"\"\nclaim = \"tid\"\nclaim_value = \"t1\"\ntargets = [\"pg\"]\n\
         [[routes]]\nid = \"rest\"\ntargets = [\"a\"]\n"
        ),
    )?;
    let text = c.describe(&Default::default())?;
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("# route card: /cardiology (every type; any caller; writes to a"), "{text}");
    assert!(text.contains("#   target lab: remote https://lab.example/fhir, id prefix \"LAB-\""), "{text}");
    assert!(text.contains("# route tenant: / (every type; claim tid = \"t1\""), "{text}");
    Ok(())
}

#[test]
fn bad_targets_are_named() {
    let one = |name: &str, text: &str| load_toml(name, text).err().map(|e| e.to_string()).unwrap_or_default();
    let both = one("both", "[[targets]]\nid = \"x\"\nstore = \"sqlite::memory:\"\nbase_url = \"https://h\"\n");
    assert!(both.contains("target `x`") && both.contains("not both"), "{both}");
    let neither = one("neither", "[[targets]]\nid = \"x\"\n");
    assert!(neither.contains("target `x`: set `store`"), "{neither}");
    let url = one("url", "[[targets]]\nid = \"x\"\nbase_url = \"ftp://h\"\n");
    assert!(url.contains("target `x`") && url.contains("https://"), "{url}");
    let dup = one(
        "dup",
        "[[targets]]\nid = \"x\"\nstore = \"sqlite::memory:\"\n[[targets]]\nid = \"x\"\nbase_url = \"https://h\"\n",
    );
    assert!(dup.contains("target `x` is declared twice"), "{dup}");
    let store = one("store", "[[targets]]\nid = \"x\"\nstore = \"mysql://u:pw@h/db\"\n");
    assert!(store.contains("target `x`: unsupported store URL") && !store.contains(":pw@"), "{store}");
    let unknown = one("unknown", "[[targets]]\nid = \"x\"\nstore = \"sqlite::memory:\"\ncolour = \"red\"\n");
    assert!(unknown.contains("colour"), "{unknown}");
}

#[test]
fn bad_routes_are_named() {
    let cases = [
        ("[[routes]]\nid = \"r\"\ntargets = [\"nope\"]\n", "route `r`: `targets`: no target `nope`"),
        ("[[routes]]\nid = \"r\"\nprefix = \"Patient\"\ntargets = [\"a\"]\n", "`Patient` is a resource type name"),
        ("[[routes]]\nid = \"r\"\nprefix = \"a b\"\ntargets = [\"a\"]\n", "segment `a b`"),
        ("[[routes]]\nid = \"r\"\nprefix = \"metadata\"\ntargets = [\"a\"]\n", "segment `metadata`"),
        ("[[routes]]\nid = \"r\"\ntypes = [\"Patiente\"]\ntargets = [\"a\"]\n", "`Patiente` is not an R4"),
        (
            "[[routes]]\nid = \"r\"\nclaim = \"tid\"\ntargets = [\"a\"]\n",
            "route `r`: `claim` is set without `claim_value`",
        ),
        ("[[routes]]\nid = \"r\"\ntargets = [\"a\"]\nwrite_target = \"lab\"\n", "`write_target = \"lab\"` is not one"),
        ("[[routes]]\nid = \"r\"\ntargets = [\"a\"]\non_target_error = \"ignore\"\n", "expected `partial` or `fail`"),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\", \"lab\"]\ntype_level_only = true\n",
            "`type_level_only = true` streams one remote target's answers unchanged: it needs exactly one target",
        ),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"lab\"]\nid_prefixes = { lab = \"L-\" }\ntype_level_only = true\n",
            "and no `id_prefixes`",
        ),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\"]\ntype_level_only = true\n",
            "route `r`: `type_level_only = true` streams a remote target's answers; `a` is a local store",
        ),
        ("[[routes]]\nid = \"r\"\ntargets = []\n", "route `r`: `targets` is empty"),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\", \"lab\"]\nid_prefixes = { a = \"X-\", lab = \"X-\" }\n",
            "targets `a` and `lab` share the prefix `X-`",
        ),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\", \"lab\"]\nid_prefixes = { a = \"X\", lab = \"XY\" }\n",
            "share the prefix",
        ),
        ("[[routes]]\nid = \"r\"\ntargets = [\"a\"]\nid_prefixes = { a = \"X/\" }\n", "`id_prefixes`: `X/`"),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\"]\nid_prefixes = { lab = \"L-\" }\n",
            "`lab` is not one of the route's",
        ),
        (
            "[[routes]]\nid = \"r\"\ntargets = [\"a\"]\n[[routes]]\nid = \"r\"\nprefix = \"x\"\ntargets = [\"a\"]\n",
            "route `r` is declared twice",
        ),
        (
            "[[routes]]\nid = \"all\"\nprefix = \"x\"\ntargets = [\"a\"]\n[[routes]]\nid = \"late\"\nprefix = \"/x/\"\ntypes = [\"Patient\"]\ntargets = [\"lab\"]\n",
            "route `late` is unreachable: the earlier route `all`",
        ),
    ];
    for (n, (routes, expected)) in cases.iter().enumerate() {
        let message = refusal(&format!("route{n}"), routes);
        assert!(message.contains(expected), "{routes}\nexpected `{expected}` in: {message}");
    }
    // A typed or claimed route first leaves the same prefix reachable for the next.
    let ok = "[[routes]]\nid = \"mpi\"\ntypes = [\"Patient\"]\ntargets = [\"lab\"]\n[[routes]]\nid = \"rest\"\ntargets = [\"a\"]\n";
    assert_eq!(refusal("reachable", ok), "accepted");
    let streamed = "[[routes]]\nid = \"s\"\nprefix = \"s\"\ntargets = [\"lab\"]\ntype_level_only = true\n";
    assert_eq!(refusal("streamed", streamed), "accepted");
}

#[test]
fn tables_come_from_toml_only_and_their_variables_are_refused() {
    let vars: HashMap<String, String> = [("FHIRGATE_TARGETS".to_owned(), "x".to_owned())].into();
    let err = Config::load(None, &vars, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("unknown environment variable `FHIRGATE_TARGETS`"), "{err}");
    let vars: HashMap<String, String> = [("FHIRGATE_FEDERATION_PAGE_TTL_SECONDS".to_owned(), "60".to_owned())].into();
    let c = Config::load(None, &vars, Overrides::default());
    assert_eq!(c.ok().map(|c| c.page_ttl().as_secs()), Some(60));
}

#[test]
fn the_example_routing_table_is_valid() -> Result<(), GatewayError> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), std::path::PathBuf::from);
    let text = std::fs::read_to_string(dir.join("../deploy/fhirgate.example.toml"))
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let block: String = text
        .lines()
        .skip_while(|l| !l.contains("--- routing example ---"))
        .skip(1)
        .take_while(|l| !l.contains("--- end of routing example ---"))
        .map(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix('#')).unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = load_toml("example", &block)?;
    assert_eq!(c.targets().len(), 2);
    assert_eq!(c.routes()[1].id_prefix("lab"), "LAB-");
    let table = super::describe(&c);
    assert!(table.contains("#   target lab: remote https://lab-fhir"), "{table}");
    Ok(())
}

#[test]
fn the_gateway_example_is_a_valid_table() -> Result<(), GatewayError> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), std::path::PathBuf::from);
    let path = dir.join("../deploy/fhirgate.gateway.example.toml");
    let c = Config::load(Some(&path), &HashMap::new(), Overrides::default())?;
    let routes = c.routes();
    assert_eq!(routes.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["lab", "hospital"]);
    assert_eq!((routes[1].write_target(), routes[1].id_prefix("lab")), (Some("records"), "LAB-"));
    Ok(())
}
