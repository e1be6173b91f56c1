//! The page statement and `_sort` (`search::page`, `sort_keys`, `SortKey::compare`): without
//! `_sort`, the first `limit` matches by key; with it, every match with its sort keys, sorted by
//! the store (rows without a value last either way).

use std::cmp::Ordering;

use serde_json::{Map, json};

use super::{Statement, parsed, store};
use crate::search::{Params, Row, SortKey, Translator, page, sort_keys};

/// The page statement (limit 10) of a search, around the filter `F`.
fn statement(params: &[(&str, &str)]) -> Statement {
    let query = parsed(Some("Patient"), params);
    let mut p = Params::default();
    let text = page(&mut p, &query, "F", 10);
    Statement::of(text, &p.values)
}

#[test]
fn without_sort_the_first_page_by_key() {
    assert_eq!(
        statement(&[]),
        Statement::new("SELECT TOP @p1 c.t, c.rid, c.v FROM c WHERE F ORDER BY c.key", vec![json!(10)])
    );
}

#[test]
fn with_sort_every_match_and_its_sort_keys() {
    assert_eq!(
        statement(&[("_sort", "-birthdate")]),
        Statement::new("SELECT c.t, c.rid, c.v, c.lu, c.sk FROM c WHERE F", vec![])
    );
}

/// A row with the sort key `birthdate` (low and high) when given.
fn row(id: &str, last_updated: i64, birthdate: Option<(&str, &str)>) -> Row {
    let mut sk = Map::new();
    if let Some((low, high)) = birthdate {
        sk.insert("birthdate".into(), json!([low, high]));
    }
    Row { t: "Patient".into(), rid: id.into(), v: 1, lu: last_updated, sk }
}

#[test]
fn keys_order_by_low_ascending_and_high_descending_missing_last() {
    let (a, b, none) = (row("a", 2, Some(("1990", "1999"))), row("b", 1, Some(("1995", "1995"))), row("c", 3, None));
    let up = SortKey { param: "birthdate".into(), descending: false };
    assert_eq!(up.compare(&a, &b), Ordering::Less);
    assert_eq!(up.compare(&b, &none), Ordering::Less);
    let down = SortKey { param: "birthdate".into(), descending: true };
    assert_eq!(down.compare(&a, &b), Ordering::Less, "by the high end: 1999 before 1995");
    assert_eq!(down.compare(&none, &a), Ordering::Greater);
    let updated = SortKey { param: "_lastUpdated".into(), descending: false };
    assert_eq!(updated.compare(&a, &b), Ordering::Greater);
    let id = SortKey { param: "_id".into(), descending: true };
    assert_eq!(id.compare(&a, &b), Ordering::Greater);
}

#[tokio::test]
async fn sort_keys_refuse_composite_parameters() {
    let store = store().await;
    let query = parsed(Some("Patient"), &[("_sort", "-birthdate,_id")]);
    let keys = match sort_keys(&Translator::new(&store, &query), &query) {
        Ok(keys) => keys,
        Err(e) => panic!("{e}"),
    };
    let keys: Vec<(&str, bool)> = keys.iter().map(|k| (k.param.as_str(), k.descending)).collect();
    assert_eq!(keys, [("birthdate", true), ("_id", false)]);

    let query = parsed(Some("Observation"), &[("_sort", "code-value-quantity")]);
    match sort_keys(&Translator::new(&store, &query), &query) {
        Ok(_) => panic!("sorting by a composite parameter must be refused"),
        Err(e) => assert_eq!(e.to_string(), "cannot sort by `code-value-quantity` (composite parameter)"),
    }
}
