//! The shared storage contract suite on the Cosmos store, each case on a fresh in-process
//! emulator account (the SDK's own, running its whole pipeline: routing, retries, batches).

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use fhirgate_cosmos::{CosmosSettings, CosmosStore};

async fn fresh_store() -> Box<CosmosStore> {
    let settings = CosmosSettings::emulator().expect("emulator settings");
    Box::new(CosmosStore::connect(&settings).await.expect("connect to the emulator"))
}

fhirgate_engine::store_contract!(fresh_store().await);
