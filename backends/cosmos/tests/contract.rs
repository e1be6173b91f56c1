//! The shared storage contract suite on the Cosmos store, each case on a fresh in-process
//! emulator account (the SDK's own, running its whole pipeline: routing, retries, batches), in
//! both layouts. The emulator's containers have four physical partitions, so the partitioned
//! layout's resources, transaction records and locks are spread over several.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use fhirgate_cosmos::{CosmosSettings, CosmosStore, Layout};

async fn fresh_store(layout: Layout) -> Box<CosmosStore> {
    let mut settings = CosmosSettings::emulator().expect("emulator settings");
    settings.layout = layout;
    Box::new(CosmosStore::connect(&settings).await.expect("connect to the emulator"))
}

mod single {
    use super::{Layout, fresh_store};
    fhirgate_engine::store_contract!(fresh_store(Layout::Single).await);
}

mod partitioned {
    use super::{Layout, fresh_store};
    fhirgate_engine::store_contract!(fresh_store(Layout::Partitioned).await);
}
