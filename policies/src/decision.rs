//! The answer to an authorization question.

/// Allow or deny, with the policies that decided it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The determining policies: the permits that allowed, or the forbids that denied (empty
    /// when nothing permitted: default deny).
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (they are skipped, which can only deny).
    pub errors: Vec<String>,
    /// A type-level allow that every data-level decision of the same request would repeat: it
    /// was determined by a policy that cannot see a resource's data, and no forbid of the set
    /// can see it either ([`crate::PolicyEngine::decide`]).
    pub covers_data: bool,
}

impl Decision {
    /// Cedar's answer as a decision (`covers_data` false).
    pub(crate) fn of(response: &cedar_policy::Response) -> Self {
        let diagnostics = response.diagnostics();
        let mut policies: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        policies.sort();
        let errors = diagnostics.errors().map(ToString::to_string).collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        Self { allowed, policies, errors, covers_data: false }
    }

    /// `allow` or `deny`.
    pub fn as_str(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }
}
