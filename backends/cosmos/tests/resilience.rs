//! The Cosmos store under the SDK's fault injection, on the in-process emulator: throttling
//! within and beyond the retry budget, transient failures and timeouts, and an ambiguous batch
//! outcome. Every case checks that nothing acknowledged is lost and nothing is half-written.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]
#![expect(clippy::panic, reason = "tests: a panic is a failed test")]

use std::sync::Arc;
use std::time::Duration;

use azure_data_cosmos::fault_injection::{
    FaultInjectionConditionBuilder, FaultInjectionErrorType, FaultInjectionResultBuilder, FaultInjectionRule,
    FaultInjectionRuleBuilder, FaultOperationType,
};
use fhirgate_cosmos::{CosmosSettings, CosmosStore};
use fhirgate_engine::storage::contract::{version, write};
use fhirgate_engine::storage::{Store, StoreError};

/// A rule answering `error` to `operation`, at most `limit` times (forever with `None`),
/// created disabled.
fn rule(
    name: &str,
    operation: FaultOperationType,
    error: FaultInjectionErrorType,
    limit: Option<u32>,
) -> Arc<FaultInjectionRule> {
    let mut builder =
        FaultInjectionRuleBuilder::new(name, FaultInjectionResultBuilder::new().with_error(error).build())
            .with_condition(FaultInjectionConditionBuilder::new().with_operation_type(operation).build());
    if let Some(limit) = limit {
        builder = builder.with_hit_limit(limit);
    }
    let rule = Arc::new(builder.build());
    rule.disable();
    rule
}

/// A store on a fresh emulator account with `rules`, a few throttle retries and a short wait.
async fn store_with(rules: &[Arc<FaultInjectionRule>]) -> CosmosStore {
    let mut settings = CosmosSettings::emulator_with_faults(rules.to_vec()).expect("emulator settings");
    settings.throttle_retries = 3;
    settings.throttle_max_wait = Duration::from_secs(2);
    CosmosStore::connect(&settings).await.expect("connect to the emulator")
}

#[tokio::test]
async fn throttling_within_the_budget_is_retried_and_the_write_lands() {
    let throttle =
        rule("throttle-twice", FaultOperationType::BatchItem, FaultInjectionErrorType::TooManyRequests, Some(2));
    let store = store_with(std::slice::from_ref(&throttle)).await;
    throttle.enable();
    store.transact(vec![write(version("Patient", "a", 1, 0))]).await.expect("the write succeeds after retries");
    assert_eq!(throttle.hit_count(), 2, "both throttles were met and retried");
    let read = store.read("Patient", "a").await.expect("read").expect("the patient exists");
    assert_eq!(read.version, 1);
}

#[tokio::test]
async fn throttling_beyond_the_budget_is_unavailable_and_writes_nothing() {
    let throttle =
        rule("throttle-always", FaultOperationType::BatchItem, FaultInjectionErrorType::TooManyRequests, None);
    let store = store_with(std::slice::from_ref(&throttle)).await;
    store.transact(vec![write(version("Patient", "kept", 1, 0))]).await.expect("a first write");

    throttle.enable();
    let batch = vec![write(version("Patient", "kept", 2, 5)), write(version("Patient", "new", 1, 5))];
    match store.transact(batch).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("429"), "names the throttling: {message}"),
        other => panic!("expected the store to be unavailable, got {other:?}"),
    }
    assert!(throttle.hit_count() >= 4, "the first try and 3 retries, got {}", throttle.hit_count());
    throttle.disable();

    // Nothing of the refused batch, everything from before.
    assert_eq!(store.read("Patient", "kept").await.expect("read").expect("kept").version, 1);
    assert!(store.read("Patient", "new").await.expect("read").is_none());
    assert!(store.vread("Patient", "kept", 2).await.expect("vread").is_none());
    // And the store works again.
    store.transact(vec![write(version("Patient", "kept", 2, 10))]).await.expect("writes resume");
}

#[tokio::test]
async fn transient_read_failures_are_retried() {
    let unavailable =
        rule("read-503-once", FaultOperationType::ReadItem, FaultInjectionErrorType::ServiceUnavailable, Some(1));
    let store = store_with(std::slice::from_ref(&unavailable)).await;
    store.transact(vec![write(version("Patient", "a", 1, 0))]).await.expect("write");
    unavailable.enable();
    let read = store.read("Patient", "a").await.expect("the read succeeds after a retry");
    assert_eq!(read.expect("exists").version, 1);
    assert_eq!(unavailable.hit_count(), 1);
}

#[tokio::test]
async fn query_timeouts_are_reported_not_hidden() {
    let timeout = rule("query-timeout", FaultOperationType::QueryItem, FaultInjectionErrorType::Timeout, None);
    let store = store_with(std::slice::from_ref(&timeout)).await;
    store.transact(vec![write(version("Patient", "a", 1, 0))]).await.expect("write");
    timeout.enable();
    let history = store.history(&fhirgate_engine::storage::contract::history_query(Some("Patient"), None, 10)).await;
    match history {
        Err(StoreError::Timeout(_) | StoreError::Unavailable(_)) => {}
        other => panic!("expected a timeout or unavailable, got {other:?}"),
    }
    timeout.disable();
    let page = store
        .history(&fhirgate_engine::storage::contract::history_query(Some("Patient"), None, 10))
        .await
        .expect("history after the fault");
    assert_eq!(page.total, 1);
}

#[tokio::test]
async fn an_ambiguous_batch_is_all_or_nothing() {
    // The batch commits, then its answer is lost: the client cannot know, but the store must be
    // whole either way (both resources, both documents each, or none).
    let lost = rule(
        "lost-answer",
        FaultOperationType::BatchItem,
        FaultInjectionErrorType::ResponseTimeoutAfterService,
        Some(1),
    );
    let store = store_with(std::slice::from_ref(&lost)).await;
    lost.enable();
    let batch = vec![write(version("Patient", "x", 1, 0)), write(version("Patient", "y", 1, 0))];
    let result = store.transact(batch).await;
    assert_eq!(lost.hit_count(), 1, "the fault met the batch");
    let x = store.read("Patient", "x").await.expect("read x");
    let y = store.read("Patient", "y").await.expect("read y");
    assert_eq!(x.is_some(), y.is_some(), "both or neither (result {result:?})");
    if result.is_ok() {
        assert!(x.is_some(), "an acknowledged write is kept");
    }
    for id in ["x", "y"] {
        let current = store.read("Patient", id).await.expect("read").is_some();
        let version_doc = store.vread("Patient", id, 1).await.expect("vread").is_some();
        assert_eq!(current, version_doc, "`{id}`: current and version documents agree");
    }
}

#[tokio::test]
async fn a_missing_container_is_explained_when_the_store_may_not_create_it() {
    let mut settings = CosmosSettings::emulator().expect("emulator settings");
    settings.create_if_missing = false;
    let Err(error) = CosmosStore::connect(&settings).await else {
        panic!("connected to a container that does not exist")
    };
    let message = error.to_string();
    assert!(message.contains("`fhir`") && message.contains("`resources`"), "names them: {message}");
    assert!(message.contains("/pk") && message.contains("create_if_missing"), "says how to fix it: {message}");
}

#[tokio::test]
async fn the_store_creates_its_container_once_and_finds_it_again() {
    let settings = CosmosSettings::emulator().expect("emulator settings");
    let first = CosmosStore::connect(&settings).await.expect("creates the database and container");
    first.transact(vec![write(version("Patient", "a", 1, 0))]).await.expect("write");
    // A second gateway on the same account: the container exists, the data is there.
    let second = CosmosStore::connect(&settings).await.expect("finds the existing container");
    assert_eq!(second.read("Patient", "a").await.expect("read").expect("exists").version, 1);
    assert!(fhirgate_engine::storage::cost::total() > 0.0, "request charges are counted");
}
