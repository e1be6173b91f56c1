//! `fhirgate policy prove`: symbolic proofs over policy sets ([`fhirgate_policies::prove`]),
//! printed one property a line with a counterexample under each that fails.

use std::path::PathBuf;

use fhirgate_policies::prove::{self, Property, properties, solver::Cvc5};
use fhirgate_policies::{PolicySource, named_or_directory, shipped_names};

use crate::error::GatewayError;

/// What to prove.
pub struct Prove {
    /// Sets proved together (combined); none: each shipped set on its own.
    pub sets: Vec<String>,
    /// Only the properties with these names.
    pub properties: Vec<String>,
    /// `[A, B]`: A allows no more than B (each a set, or several joined by commas).
    pub implies: Vec<String>,
    pub solver: Option<PathBuf>,
}

/// Runs the proofs; an error when a property does not hold.
pub fn run(args: Prove) -> Result<(), GatewayError> {
    let solver = Cvc5::find(args.solver);
    let mut runs: Vec<(String, Vec<PolicySource>, Vec<Property>)> = Vec::new();
    if let [a, b] = args.implies.as_slice() {
        let bound = properties::bounded_by(b, combined(b)?);
        runs.push((a.clone(), combined(a)?, vec![bound]));
    } else if args.sets.is_empty() {
        for set in shipped_names() {
            runs.push((set.to_string(), named_or_directory(set)?, properties::of(set)?));
        }
    } else {
        let mut sources = Vec::new();
        let mut stated = vec![Property::NeverErrors];
        for set in &args.sets {
            sources.extend(named_or_directory(set)?);
            stated.extend(properties::of(set)?.into_iter().filter(|p| !matches!(p, Property::NeverErrors)));
        }
        runs.push((args.sets.join(" + "), sources, stated));
    }
    let (mut held, mut failed) = (0, 0);
    for (name, sources, mut stated) in runs {
        if !args.properties.is_empty() {
            stated.retain(|p| args.properties.iter().any(|wanted| wanted == p.name()));
        }
        if stated.is_empty() {
            continue;
        }
        println!("{name}");
        for finding in prove::prove(&sources, &stated, &solver)? {
            if finding.holds() {
                held += 1;
                println!(
                    "  holds  {}: {} ({} request environments)",
                    finding.property, finding.description, finding.environments
                );
            } else {
                failed += 1;
                println!("  FAILS  {}: {}", finding.property, finding.description);
                for line in finding.counterexample.unwrap_or_default().lines() {
                    println!("         {line}");
                }
            }
        }
    }
    println!("{held} hold, {failed} fail");
    if held + failed == 0 {
        return Err(GatewayError::Config(format!("no property named {:?} in these sets", args.properties)));
    }
    if failed > 0 {
        return Err(GatewayError::Config(format!("properties that do not hold: {failed} (hold: {held})")));
    }
    Ok(())
}

/// The sources of one or several sets joined by commas (`microsoft-roles,examples`).
fn combined(sets: &str) -> Result<Vec<PolicySource>, GatewayError> {
    let mut sources = Vec::new();
    for set in sets.split(',').filter(|s| !s.is_empty()) {
        sources.extend(named_or_directory(set)?);
    }
    Ok(sources)
}
