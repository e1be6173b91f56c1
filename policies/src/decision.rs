//! The answer to an authorization question.

/// Allow or deny, with the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The determining policies: the permits that allowed, or the forbids that denied (empty
    /// when nothing permitted: default deny).
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (they are skipped, which can only deny).
    pub errors: Vec<String>,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }
}
