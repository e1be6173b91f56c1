//! The R4 assertion operators (`assert-operator-codes`) over the actual values an assertion
//! found. Like XPath's string value of a node set, single-value operators look at the first
//! value; `empty`/`notEmpty` look at all of them. `eval` is not handled here: the runner
//! reports it as skipped.
//!
//! Every message names what was looked at, what was expected and what came back:
//! `expected status not equal to `200`, got `200``.

/// Applies `operator` (`equals` when absent) to `actual`, the values of `what` (`status`, an
/// expression, a header), and the `expected` value. `Ok` carries a description of what passed,
/// `Err` of what failed.
pub(super) fn compare(operator: &str, what: &str, actual: &[String], expected: Option<&str>) -> Result<String, String> {
    let first = actual.first().map(String::as_str);
    let expected_value =
        || expected.ok_or_else(|| format!("operator `{operator}` needs a value to compare {what} with"));
    let (holds, phrase) = match operator {
        "" | "equals" => {
            let e = expected_value()?;
            (first == Some(e), format!("equal to `{e}`"))
        }
        "notEquals" => {
            let e = expected_value()?;
            (first != Some(e), format!("not equal to `{e}`"))
        }
        "in" | "notIn" => {
            let e = expected_value()?;
            let found = first.is_some_and(|f| e.split(',').any(|item| item.trim() == f));
            let negated = operator == "notIn";
            (found != negated, format!("{} of `{e}`", if negated { "none" } else { "one" }))
        }
        "greaterThan" | "lessThan" => {
            let e = expected_value()?;
            let greater = operator == "greaterThan";
            let wanted = if greater { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less };
            let ordering = first.and_then(|f| match (f.trim().parse::<f64>(), e.trim().parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(f.cmp(e)),
            });
            (ordering == Some(wanted), format!("{} than `{e}`", if greater { "greater" } else { "less" }))
        }
        "empty" => (actual.iter().all(String::is_empty), "empty".to_owned()),
        "notEmpty" => (actual.iter().any(|a| !a.is_empty()), "not empty".to_owned()),
        "contains" | "notContains" => {
            let e = expected_value()?;
            let found = first.is_some_and(|f| f.contains(e));
            let negated = operator == "notContains";
            (found != negated, format!("{} `{e}`", if negated { "not containing" } else { "containing" }))
        }
        other => return Err(format!("unknown operator `{other}` for {what}")),
    };
    let got = shown(actual);
    if holds {
        Ok(format!("{what} is {got}: {phrase} as expected"))
    } else {
        Err(format!("expected {what} {phrase}, got {got}"))
    }
}

/// The values found, as a message shows them: `nothing`, `` `a` ``, or `` `a` (and 2 more) ``.
fn shown(actual: &[String]) -> String {
    match actual {
        [] => "nothing".to_owned(),
        [one] => format!("`{one}`"),
        [first, rest @ ..] => format!("`{first}` (and {} more)", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    fn values(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_operator() {
        let one = values(&["200"]);
        let none = values(&[]);
        let pass = |op: &str, actual: &[String], expected: Option<&str>| compare(op, "x", actual, expected).is_ok();
        assert!(pass("equals", &one, Some("200")));
        assert!(pass("", &one, Some("200")));
        assert!(!pass("equals", &one, Some("201")));
        assert!(!pass("equals", &none, Some("200")));
        assert!(pass("notEquals", &one, Some("201")));
        assert!(pass("notEquals", &none, Some("201")));
        assert!(!pass("notEquals", &one, Some("200")));
        assert!(pass("in", &one, Some("201, 200")));
        assert!(!pass("in", &one, Some("201,204")));
        assert!(pass("notIn", &one, Some("201,204")));
        assert!(!pass("notIn", &one, Some("200,204")));
        assert!(pass("greaterThan", &one, Some("199")));
        assert!(!pass("greaterThan", &one, Some("200")));
        assert!(pass("lessThan", &values(&["9"]), Some("10")), "numbers compare as numbers");
        assert!(pass("lessThan", &values(&["2020-01-01"]), Some("2021-01-01")), "other values as text");
        assert!(!pass("lessThan", &none, Some("1")));
        assert!(pass("empty", &none, None));
        assert!(pass("empty", &values(&[""]), None));
        assert!(!pass("empty", &one, None));
        assert!(pass("notEmpty", &one, None));
        assert!(!pass("notEmpty", &none, None));
        assert!(pass("contains", &values(&["Patient/1/_history/1"]), Some("_history/1")));
        assert!(!pass("contains", &one, Some("x")));
        assert!(pass("notContains", &one, Some("x")));
        assert!(!pass("notContains", &one, Some("20")));
    }

    /// Each operator's failure states what was expected and what came back.
    #[test]
    fn failures_say_what_was_expected_and_what_came_back() {
        let fail = |op: &str, actual: &[&str], expected: Option<&str>| {
            compare(op, "status", &values(actual), expected).err().unwrap_or_default()
        };
        assert_eq!(fail("equals", &["404"], Some("200")), "expected status equal to `200`, got `404`");
        assert_eq!(fail("notEquals", &["200"], Some("200")), "expected status not equal to `200`, got `200`");
        assert_eq!(fail("in", &["404"], Some("200,201")), "expected status one of `200,201`, got `404`");
        assert_eq!(fail("notIn", &["200"], Some("200,201")), "expected status none of `200,201`, got `200`");
        assert_eq!(fail("greaterThan", &["199"], Some("200")), "expected status greater than `200`, got `199`");
        assert_eq!(fail("lessThan", &[], Some("200")), "expected status less than `200`, got nothing");
        assert_eq!(fail("empty", &["a", "b", "c"], None), "expected status empty, got `a` (and 2 more)");
        assert_eq!(fail("notEmpty", &[], None), "expected status not empty, got nothing");
        assert_eq!(fail("contains", &["abc"], Some("x")), "expected status containing `x`, got `abc`");
        assert_eq!(fail("notContains", &["abc"], Some("b")), "expected status not containing `b`, got `abc`");
        assert_eq!(
            compare("equals", "status", &values(&["200"]), Some("200")),
            Ok("status is `200`: equal to `200` as expected".to_owned())
        );
    }

    #[test]
    fn missing_values_and_unknown_operators_fail_with_a_reason() {
        assert_eq!(
            compare("equals", "status", &[], None),
            Err("operator `equals` needs a value to compare status with".to_owned())
        );
        assert_eq!(compare("like", "status", &[], Some("x")), Err("unknown operator `like` for status".to_owned()));
    }
}
