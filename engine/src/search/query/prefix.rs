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

/// `ap` on a date: the range `[start, end]` (RFC 3339 instants) widened on both sides by a tenth
/// of the time between it and now, at least a day. Text that does not parse is kept as it is.
pub(super) fn approximate_dates(start: &str, end: &str) -> (String, String) {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let (Ok(s), Ok(e)) = (OffsetDateTime::parse(start, &Rfc3339), OffsetDateTime::parse(end, &Rfc3339)) else {
        return (start.to_owned(), end.to_owned());
    };
    let now = OffsetDateTime::now_utc();
    let distance = if now < s {
        s - now
    } else if now > e {
        now - e
    } else {
        time::Duration::ZERO
    };
    let margin = (distance / 10_i32).max(time::Duration::DAY);
    let widen = |t: Option<OffsetDateTime>, fallback: &str| {
        t.map_or_else(|| fallback.to_owned(), crate::resource::format_instant)
    };
    (widen(s.checked_sub(margin), start), widen(e.checked_add(margin), end))
}

/// `ap` on a number `value` with implicit range `[low, high)`: the inclusive range within a
/// tenth of the value, or the value's own precision if that is wider.
pub(super) fn approximate_number(value: f64, low: f64, high: f64) -> (f64, f64) {
    let margin = (value.abs() / 10.0).max(high - low);
    (value - margin, value + margin)
}
