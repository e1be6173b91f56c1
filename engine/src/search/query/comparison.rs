//! What a prefix means for an indexed date or number (search.html "Prefixes"), once for every
//! store: a small formula over comparisons of the index's columns with bound values, which each
//! store renders with its own column names and placeholders ([`Formula::infix`]; SQL and Cosmos
//! DB SQL share the infix syntax).
//!
//! A date is indexed as the inclusive range `[start, end]` of its instants; a number or quantity
//! as its exact value, and the implicit-precision range `[low, high)` of the *search* value
//! decides `eq` (search.html "Searching numbers").

use super::prefix::{Prefix, approximate_dates, approximate_number};

/// The indexed column a comparison reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// A date range's first instant.
    Start,
    /// A date range's last instant.
    End,
    /// A number's or quantity's value.
    Value,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A condition on one index entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula<V> {
    /// `column op value`.
    Cmp(Column, Op, V),
    /// Both hold.
    And(Box<Self>, Box<Self>),
    /// Either holds.
    Or(Box<Self>, Box<Self>),
    /// Does not hold.
    Not(Box<Self>),
}

impl<V> Formula<V> {
    fn and(a: Self, b: Self) -> Self {
        Self::And(Box::new(a), Box::new(b))
    }

    fn or(a: Self, b: Self) -> Self {
        Self::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Self) -> Self {
        Self::Not(Box::new(a))
    }

    /// The formula as infix text (`AND`, `OR`, `NOT`, `<`, `<=`, `>`, `>=`, parentheses): `column`
    /// names a column, `bind` gives the placeholder of a value (binding it).
    pub fn infix(&self, column: &impl Fn(Column) -> String, bind: &mut impl FnMut(&V) -> String) -> String {
        match self {
            Self::Cmp(c, op, v) => format!("{} {} {}", column(*c), op.symbol(), bind(v)),
            Self::And(a, b) => format!("({} AND {})", a.infix(column, bind), b.infix(column, bind)),
            Self::Or(a, b) => format!("({} OR {})", a.infix(column, bind), b.infix(column, bind)),
            Self::Not(a) => format!("NOT {}", a.infix(column, bind)),
        }
    }
}

/// An indexed date range `[Start, End]` against the search range `[start, end]` (instants as
/// text, which compares as time).
pub fn date(prefix: Prefix, start: &str, end: &str) -> Formula<String> {
    use Column::{End, Start};
    let cmp = |c, op, v: &str| Formula::Cmp(c, op, v.to_owned());
    let within = || Formula::and(cmp(Start, Op::Ge, start), cmp(End, Op::Le, end));
    match prefix {
        Prefix::Eq => within(),
        Prefix::Ne => Formula::not(within()),
        Prefix::Gt => cmp(End, Op::Gt, end),
        Prefix::Lt => cmp(Start, Op::Lt, start),
        Prefix::Ge => Formula::or(cmp(End, Op::Gt, end), within()),
        Prefix::Le => Formula::or(cmp(Start, Op::Lt, start), within()),
        Prefix::Sa => cmp(Start, Op::Gt, end),
        Prefix::Eb => cmp(End, Op::Lt, start),
        // Overlaps the search range widened by 10% of its distance from now.
        Prefix::Ap => {
            let (start, end) = approximate_dates(start, end);
            Formula::and(cmp(Start, Op::Le, &end), cmp(End, Op::Ge, &start))
        }
    }
}

/// An indexed number against the search `value` with its implicit range `[low, high)`; `Err`
/// names text that is not a finite number.
pub fn number(prefix: Prefix, value: &str, low: &str, high: &str) -> Result<Formula<f64>, String> {
    let parse =
        |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| format!("`{s}` is not a number"));
    let (v, l, h) = (parse(value)?, parse(low)?, parse(high)?);
    let cmp = |op, x| Formula::Cmp(Column::Value, op, x);
    let between = |low, high| Formula::and(cmp(Op::Ge, low), cmp(Op::Lt, high));
    Ok(match prefix {
        Prefix::Eq => between(l, h),
        Prefix::Ne => Formula::not(between(l, h)),
        Prefix::Gt | Prefix::Sa => cmp(Op::Gt, v),
        Prefix::Lt | Prefix::Eb => cmp(Op::Lt, v),
        Prefix::Ge => cmp(Op::Ge, v),
        Prefix::Le => cmp(Op::Le, v),
        Prefix::Ap => {
            let (low, high) = approximate_number(v, l, h);
            Formula::and(cmp(Op::Ge, low), cmp(Op::Le, high))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<V: std::fmt::Display>(formula: &Formula<V>) -> String {
        let column = |c: Column| format!("{c:?}").to_lowercase();
        formula.infix(&column, &mut |v: &V| v.to_string())
    }

    #[test]
    fn prefixes_as_formulas() -> Result<(), String> {
        let (s, e) = ("2020-01-01T00:00:00.000Z", "2020-01-01T23:59:59.999Z");
        assert_eq!(text(&date(Prefix::Eq, s, e)), format!("(start >= {s} AND end <= {e})"));
        assert_eq!(text(&date(Prefix::Ne, s, e)), format!("NOT (start >= {s} AND end <= {e})"));
        assert_eq!(text(&date(Prefix::Ge, s, e)), format!("(end > {e} OR (start >= {s} AND end <= {e}))"));
        assert_eq!(text(&date(Prefix::Sa, s, e)), format!("start > {e}"));
        assert_eq!(text(&date(Prefix::Eb, s, e)), format!("end < {s}"));
        assert_eq!(text(&number(Prefix::Eq, "100", "99.5", "100.5")?), "(value >= 99.5 AND value < 100.5)");
        assert_eq!(text(&number(Prefix::Ap, "100", "99.5", "100.5")?), "(value >= 90 AND value <= 110)");
        assert_eq!(number(Prefix::Gt, "1e999", "0", "0"), Err("`1e999` is not a number".to_owned()));
        Ok(())
    }
}
