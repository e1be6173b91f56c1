//! SQLite's query plans of the statements `fhirgate-sql` builds: that each search reads the
//! indexes it was written for (covering indexes, the walk of one value's index in key order,
//! the version index), checked with `EXPLAIN QUERY PLAN`.

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::{self, SearchQuery};
use fhirgate_engine::storage::SearchMatch;
use fhirgate_sql::{COLUMNS, Dialect, Error, Sql, translate, versions};
use sqlx::AssertSqlSafe;

use crate::SqliteStore;

/// `EXPLAIN QUERY PLAN` of a statement, one line per step (or what went wrong).
async fn explain(store: &SqliteStore, sql: &Sql) -> Vec<String> {
    let Ok(args) = fhirgate_sql::arguments::<sqlx::Sqlite>(sql) else { return vec!["unbindable".into()] };
    let text = format!("EXPLAIN QUERY PLAN {}", sql.text);
    let rows: Result<Vec<(i64, i64, i64, String)>, _> =
        sqlx::query_as_with(AssertSqlSafe(text.as_str()), args).fetch_all(&store.backend().reader).await;
    rows.map_or_else(|e| vec![e.to_string()], |r| r.into_iter().map(|(.., detail)| detail).collect())
}

/// The query of a search URL's parameters, continued after `after`.
fn parsed(resource_type: &str, params: &[(&str, &str)], after: Option<(&str, &str)>) -> Result<SearchQuery, Error> {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut query = query::parse(Definitions::r4(), Some(resource_type), &params, true)
        .map_err(|e| Error::Invalid(e.to_string()))?
        .query;
    query.after = after.map(|(t, id)| (t.to_owned(), id.to_owned()));
    Ok(query)
}

/// [`explain`] of the page statement a search URL's query translates to.
async fn plan(store: &SqliteStore, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    plan_after(store, resource_type, params, None).await
}

/// [`plan`] of the query continued after `after`.
async fn plan_after(
    store: &SqliteStore,
    resource_type: &str,
    params: &[(&str, &str)],
    after: Option<(&str, &str)>,
) -> Vec<String> {
    let query = match parsed(resource_type, params, after) {
        Ok(query) => query,
        Err(e) => return vec![e.to_string()],
    };
    match translate::select(Dialect::Sqlite, Definitions::r4(), &query, 50) {
        Ok(select) => explain(store, &select.sql).await,
        Err(e) => vec![format!("untranslatable: {e:?}")],
    }
}

#[tokio::test]
async fn token_and_reference_clauses_are_answered_from_covering_indexes() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let token = [("code", "http://loinc.org|29463-7")];
    let compartment = [("patient", "Patient/p1"), ("code", "http://loinc.org|29463-7")];
    for params in [&token[..], &compartment[..]] {
        let plan = plan(&store, "Observation", params).await;
        let lookups: Vec<&String> =
            plan.iter().filter(|l| l.contains("search_token") || l.contains("search_reference")).collect();
        assert!(!lookups.is_empty(), "{params:?}: {plan:#?}");
        assert!(lookups.iter().all(|l| l.contains("COVERING INDEX")), "{params:?} reads table rows: {plan:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_search_drives_from_its_narrowest_clause_and_probes_the_others_per_candidate() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    // The common code written first: the patient's references still find the candidates.
    let params = [("code", "http://loinc.org|29463-7"), ("patient", "p1")];
    let plan = plan(&store, "Observation", &params).await;
    let (tokens, references): (Vec<&String>, Vec<&String>) =
        plan.iter().filter(|l| l.contains("search_")).partition(|l| l.contains("search_token"));
    assert!(!tokens.is_empty() && !references.is_empty(), "{plan:#?}");
    assert!(plan.iter().any(|l| l.starts_with("CORRELATED SCALAR SUBQUERY")), "no probe: {plan:#?}");
    assert!(!plan.iter().any(|l| l.starts_with("LIST SUBQUERY")), "the code is materialised: {plan:#?}");
    assert!(references.iter().all(|l| !l.contains(" EXISTS ")), "the reference does not drive: {plan:#?}");
    // Through the patient's references, not every Observation reference in key order.
    assert!(references.iter().all(|l| l.contains("search_reference_target (target_id=?")), "{plan:#?}");
    Ok(())
}

#[tokio::test]
async fn a_page_of_a_token_search_walks_the_index_in_order_without_sorting() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let code = [("code", "http://loinc.org|29463-7")];
    for after in [None, Some(("Observation", "o5"))] {
        let plan = plan_after(&store, "Observation", &code, after).await;
        assert!(plan.iter().any(|l| l.contains("search_token") && l.contains("COVERING INDEX")), "{plan:#?}");
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "after {after:?}, it sorts: {plan:#?}");
        assert!(!plan.iter().any(|l| l.contains("LIST SUBQUERY")), "after {after:?}, it lists every match: {plan:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_page_of_a_patients_observations_walks_their_references_in_order_without_sorting() -> Result<(), Error> {
    // `patient=p1` leaves the target's type open (Patient or Group): the reference index's rows
    // of one target and parameter still come in key order, so a page stops after its matches
    // instead of probing every Observation of the patient.
    let store = crate::connect("sqlite::memory:").await?;
    let params = [("patient", "p1"), ("code", "http://loinc.org|29463-7")];
    let plan = plan(&store, "Observation", &params).await;
    assert!(plan.iter().any(|l| l.contains("search_reference_target (target_id=? AND param=?")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "it sorts: {plan:#?}");
    Ok(())
}

#[tokio::test]
async fn a_probe_per_candidate_is_a_seek_of_that_candidates_rows() -> Result<(), Error> {
    // Each other clause fixes the candidate's key in the index it probes: a code without its
    // system, a date range, a string prefix, a missing value. Before, SQLite chose the value
    // index for each and scanned every row of the code (or every date after 2015) per candidate.
    let store = crate::connect("sqlite::memory:").await?;
    for other in [
        ("code", "29463-7"),
        ("code", "http://loinc.org|29463-7"),
        ("date", "ge2015"),
        ("value-string", "abc"),
        ("code:missing", "true"),
    ] {
        for params in [vec![("patient", "p1"), other], vec![("patient", "p1"), other, ("_sort", "date")]] {
            let plan = plan(&store, "Observation", &params).await;
            let probes: Vec<&String> = plan.iter().filter(|l| l.contains(" x2 ")).collect();
            assert!(!probes.is_empty(), "{params:?}: {plan:#?}");
            assert!(
                probes.iter().all(|l| l.contains("resource_type=? AND id=?") && l.starts_with("SEARCH")),
                "{params:?} scans per candidate: {plan:#?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_walk_probes_a_candidate_before_reading_its_resource_row() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let plan = plan(&store, "Observation", &[("patient", "p1"), ("code", "29463-7")]).await;
    let at = |needle: &str| plan.iter().position(|l| l.contains(needle));
    let (Some(probe), Some(resource)) = (at(" x2 "), at("SEARCH r ")) else {
        return Err(Error::Invalid(format!("no probe or no resource lookup: {plan:#?}")));
    };
    assert!(probe < resource, "the resource row is read first: {plan:#?}");
    Ok(())
}

#[test]
fn a_cached_statement_with_a_bound_limit_is_not_compiled_again() -> Result<(), rusqlite::Error> {
    use rusqlite::StatementStatus::RePrepare;
    let run = |stable: bool| -> Result<i32, rusqlite::Error> {
        let connection = rusqlite::Connection::open_in_memory()?;
        if stable {
            crate::stable_plans(&connection)?;
        }
        connection.execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);")?;
        for limit in 1..=3 {
            let mut statement = connection.prepare_cached("SELECT a FROM t ORDER BY a LIMIT ?1")?;
            let rows: Vec<i64> = statement.query_map([limit], |row| row.get(0))?.collect::<Result<_, _>>()?;
            assert_eq!(rows.len(), usize::try_from(limit).unwrap_or(0));
        }
        let statement = connection.prepare_cached("SELECT a FROM t ORDER BY a LIMIT ?1")?;
        Ok(statement.get_status(RePrepare))
    };
    assert_eq!(run(true)?, 0);
    assert!(run(false)? > 0, "SQLite no longer compiles such a statement again: `stable_plans` may go");
    Ok(())
}

#[tokio::test]
async fn a_count_of_one_value_reads_only_its_index() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let query = parsed("Observation", &[("code", "http://loinc.org|29463-7")], None)?;
    let sql = translate::count(Dialect::Sqlite, Definitions::r4(), &query).map_err(|e| Error::Invalid(e.0))?;
    let plan = explain(&store, &sql).await;
    assert!(plan.iter().any(|l| l.contains("COVERING INDEX search_token_code")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.contains("search_current") || l.contains(" r ")), "reads resources: {plan:#?}");
    Ok(())
}

#[tokio::test]
async fn many_versions_are_read_through_the_version_index() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let key = |id: &str| SearchMatch { resource_type: "Patient".into(), id: id.into(), version: 1 };
    let sql = versions::select(Dialect::Sqlite, COLUMNS, &[key("a"), key("b")]);
    let plan = explain(&store, &sql).await;
    assert!(plan.iter().any(|l| l.starts_with("SEARCH v USING") && l.contains("version=?")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.starts_with("SCAN v")), "scans every version: {plan:#?}");
    Ok(())
}

#[tokio::test]
async fn a_batchs_stored_versions_are_looked_up_not_scanned() -> Result<(), Error> {
    let store = crate::connect("sqlite::memory:").await?;
    let ids: Vec<String> = (0..versions::MAX_KEYS).map(|n| format!("id{n}")).collect();
    for count in [1, 2, ids.len()] {
        let keys: Vec<(&str, &str)> = ids[..count].iter().map(|id| ("Patient", id.as_str())).collect();
        let plan = explain(&store, &fhirgate_sql::write::newest_versions(Dialect::Sqlite, &keys)).await;
        let lookups: Vec<&String> = plan.iter().filter(|l| l.contains(" v ")).collect();
        assert!(!lookups.is_empty(), "{plan:#?}");
        assert!(
            lookups.iter().all(|l| l.contains("sqlite_autoindex_resource_version_1 (resource_type=? AND id=?)")),
            "{count} keys: not a lookup of each key: {plan:#?}"
        );
    }
    Ok(())
}
