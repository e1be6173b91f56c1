//! The comparison prefixes of `number`, `date` and `quantity` values (search.html "Prefixes").

/// A comparison prefix; `Eq` when none is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// Starts after the value's range.
    Sa,
    /// Ends before the value's range.
    Eb,
    /// Approximately (the server chooses; commonly 10%).
    Ap,
}

impl Prefix {
    /// The prefix code as written in a query.
    pub fn code(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Lt => "lt",
            Self::Ge => "ge",
            Self::Le => "le",
            Self::Sa => "sa",
            Self::Eb => "eb",
            Self::Ap => "ap",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "lt" => Self::Lt,
            "ge" => Self::Ge,
            "le" => Self::Le,
            "sa" => Self::Sa,
            "eb" => Self::Eb,
            "ap" => Self::Ap,
            _ => return None,
        })
    }

    /// Splits a leading prefix off `value`: `ge2020` → `(Ge, "2020")`, `2020` → `(Eq, "2020")`.
    pub fn split(value: &str) -> (Self, &str) {
        match value.get(..2).and_then(Self::from_code) {
            Some(prefix) => (prefix, &value[2..]),
            None => (Self::Eq, value),
        }
    }
}
