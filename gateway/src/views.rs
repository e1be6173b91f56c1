//! `fhirgate views export`: the bulk form of SQL on FHIR views, the "normalise for machine
//! learning" path. Each ViewDefinition file becomes one file of rows (Parquet by default) in the
//! output directory, over every resource of the view's type in the configured local store.
//!
//! An operator's tool, as `migrate` is: it reads the store with the configuration's own
//! credentials and no client token, so no Cedar policy applies (the engine is asked with
//! `Unrestricted`). Clients run views over HTTP with `$viewdefinition-run`, under their policies.
//! The engine streams the store a chunk at a time and the Parquet writer flushes a row group
//! every 10,000 rows, so memory stays bounded whatever the store's size.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use fhirgate_engine::access::Unrestricted;
use fhirgate_engine::views::View;
use fhirgate_engine::views::output::{Format, Sink};
use fhirgate_engine::{Engine, Error as FhirError};

use crate::config::Config;
use crate::error::GatewayError;

/// Exports each view of `views` into `out` (created if missing) as `<name>.<ext>`, from the
/// first local store of `config`; prints one line per file written.
pub fn export(config: &Config, views: &[PathBuf], out: &Path, format: &str) -> Result<(), GatewayError> {
    let format = Format::parse(format, true).map_err(fhir)?;
    let mut parsed = Vec::new();
    for path in views {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Config(format!("cannot read the view `{}`: {e}", path.display())))?;
        let json = serde_json::from_str(&text)
            .map_err(|e| GatewayError::Config(format!("`{}` is not JSON: {e}", path.display())))?;
        let view = View::parse(&json).map_err(|e| GatewayError::Config(format!("`{}`: {e}", path.display())))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("view");
        let name = view.name.clone().filter(|n| is_file_name(n)).unwrap_or_else(|| stem.to_owned());
        parsed.push((name, view));
    }
    let url = crate::routing::Routing::local_store_urls(config)
        .into_iter()
        .next()
        .ok_or_else(|| GatewayError::Config("the configuration has no local store to export from".into()))?;
    std::fs::create_dir_all(out)
        .map_err(|e| GatewayError::Config(format!("cannot create `{}`: {e}", out.display())))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| GatewayError::Store(e.to_string()))?;
    runtime.block_on(async {
        let store = crate::stores::open(&url, &config.store).await?;
        let engine = Engine::new(config.fhir.engine_config(), store);
        for (name, view) in &parsed {
            let file = out.join(format!("{name}.{}", format.extension()));
            let writer = std::fs::File::create(&file)
                .map_err(|e| GatewayError::Config(format!("cannot write `{}`: {e}", file.display())))?;
            let mut sink = Sink::new(format, view.columns(), BufWriter::new(writer)).map_err(fhir)?;
            engine.export_view(&Unrestricted, view, &mut sink).await.map_err(fhir)?;
            let rows = sink.rows();
            sink.finish().map_err(fhir)?;
            println!("{}\t{rows} rows", file.display());
        }
        Ok(())
    })
}

/// Whether a view's `name` can be a file name as it is.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn fhir(e: FhirError) -> GatewayError {
    GatewayError::Config(e.to_string())
}
