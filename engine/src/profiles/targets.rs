//! Reference targets against `targetProfile`: when the caller of a validation supplies a
//! [`ReferenceResolver`], a reference whose element names target profiles is resolved and the
//! resource it points to must conform to one of them (as the reference validator does with
//! `validateReference = CHECK_VALID`). Without a resolver, or when the target cannot be
//! resolved, only the target's type is checked (from the literal reference).
//!
//! Bounded: targets are followed [`MAX_TARGET_DEPTH`] references deep, at most [`MAX_TARGETS`]
//! are looked up in one validation, and their walks count toward the validation's element checks
//! ([`super::MAX_CHECKS`]); a target already being checked further up the
//! chain (profiles that link back to themselves, patients that link to each other) counts as
//! conforming rather than being walked again.

use std::cell::RefCell;

use serde_json::Value;

use super::walk::{Found, Walker};
use crate::outcome::{Issue, IssueType, Severity};

/// How many references deep targets are followed (the resource validated is at depth 0).
pub const MAX_TARGET_DEPTH: usize = 3;

/// Most targets one validation looks up (found or not) and checks against their target profiles.
pub const MAX_TARGETS: usize = 32;

/// Where a validation finds the resources references point to (for their target profiles, and
/// for [`super::unresolved_references`] when the caller asks that targets exist). A resolver must answer only
/// with resources its caller may read: `None` for one that does not exist and for one the
/// caller may not see alike, so what a validation says never tells them apart.
pub trait ReferenceResolver {
    /// The resource a relative literal reference (`Patient/1`) points to.
    fn resolve(&self, reference: &str) -> Option<Value>;

    /// Whether the target of `reference` exists (for [`super::unresolved_references`]); `None`
    /// when the resolver has not looked it up (yet), which is not reported.
    fn exists(&self, reference: &str) -> Option<bool> {
        Some(self.resolve(reference).is_some())
    }
}

/// The state of target resolution shared by a validation and the walks of its targets.
pub(crate) struct Targets<'a> {
    resolver: &'a dyn ReferenceResolver,
    /// References whose targets are being checked, outermost first.
    chain: RefCell<Vec<String>>,
    /// Targets looked up so far.
    checked: RefCell<usize>,
}

impl<'a> Targets<'a> {
    pub(crate) fn new(resolver: &'a dyn ReferenceResolver) -> Self {
        Targets { resolver, chain: RefCell::new(Vec::new()), checked: RefCell::new(0) }
    }
}

/// `Type/id` when `reference` is a relative literal reference to a resource (no URL, version,
/// query or fragment).
pub(super) fn relative(reference: &str) -> Option<&str> {
    let (t, id) = reference.split_once('/')?;
    let valid_id =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    (crate::definitions::Definitions::r4().is_resource_type(t) && valid_id).then_some(reference)
}

impl<'r> Walker<'_, 'r> {
    /// When a resolver finds the target of `item`, it must conform to one of `targets`
    /// (profile URLs); a target of the wrong type is left to the type check.
    pub(super) fn target_profiles(&mut self, targets: &[String], item: &Found<'r>, reference: &str) {
        let Some(state) = self.targets else { return };
        let Some(reference) = relative(reference) else { return };
        if state.chain.borrow().len() >= MAX_TARGET_DEPTH || state.chain.borrow().iter().any(|r| r == reference) {
            return;
        }
        if *state.checked.borrow() >= MAX_TARGETS {
            return;
        }
        *state.checked.borrow_mut() += 1;
        let Some(target) = state.resolver.resolve(reference) else { return };
        self.unknown_target_profiles(targets, item);
        let target_type = target.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
        let candidates: Vec<&String> = targets
            .iter()
            .filter(|t| self.profile_type(t).is_some_and(|p| p == target_type || p == "Resource"))
            .collect();
        if candidates.is_empty() {
            return;
        }
        state.chain.borrow_mut().push(reference.to_owned());
        let mut first_error: Option<Issue> = None;
        let mut known = false;
        for url in &candidates {
            let Ok(profile) = self.conformance.profile(url) else { continue };
            known = true;
            let mut walker = Walker::new(self.conformance, &target);
            walker.targets = Some(state);
            walker.nesting = self.nesting + 1;
            walker.checks = self.checks;
            walker.resource(&profile, &target, &target_type);
            self.checks = walker.checks;
            let errors: Vec<Issue> = walker
                .finish()
                .into_iter()
                .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
                .collect();
            match errors.into_iter().next() {
                None => {
                    first_error = None;
                    break;
                }
                Some(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        state.chain.borrow_mut().pop();
        if let (true, Some(error)) = (known, first_error) {
            let choices: Vec<&str> = candidates.iter().map(|s| s.as_str()).collect();
            let message = format!(
                "`{reference}` conforms to none of the target profiles ({}): {}{}",
                choices.join(", "),
                error.expression.map(|e| format!("{e}: ")).unwrap_or_default(),
                error.diagnostics
            );
            self.issue(item.path.clone(), IssueType::Structure, message);
        }
    }
}
