//! `number` parameters: the exact decimal text, with the implicit-precision range of
//! search.html ("Prefixes": `100` means `[99.5, 100.5)`, `1.50` means `[1.495, 1.505)`).

use super::primitive_text;
use crate::fhirpath::{Decimal, Item};
use crate::storage::IndexValue;

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    let Some((value, low, high)) = primitive_text(item).and_then(|t| precise(&t)) else { return Vec::new() };
    vec![IndexValue::Number { value, low, high }]
}

/// The decimal `text` as written, and the bounds of its implicit precision (half a unit of its
/// last digit either side); `None` when `text` is no decimal.
pub(crate) fn precise(text: &str) -> Option<(String, String, String)> {
    let value = Decimal::parse(text)?;
    let half = Decimal::parse(&format!("0.{}5", "0".repeat(usize::try_from(value.scale()).ok()?)))?;
    let low = value.checked_sub(half)?;
    let high = value.checked_add(half)?;
    Some((text.to_owned(), low.to_string(), high.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Option<(String, String, String)> {
        precise(text)
    }

    #[test]
    fn implicit_precision() {
        assert_eq!(p("100"), Some(("100".into(), "99.5".into(), "100.5".into())));
        assert_eq!(p("1.50"), Some(("1.50".into(), "1.495".into(), "1.505".into())));
        assert_eq!(p("-2.5"), Some(("-2.5".into(), "-2.55".into(), "-2.45".into())));
        assert_eq!(p("abc"), None);
    }
}
