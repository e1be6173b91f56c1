//! The R4 assertion operators (`assert-operator-codes`) over the actual values an assertion
//! found. Like XPath's string value of a node set, single-value operators look at the first
//! value; `empty`/`notEmpty` look at all of them. `eval` is not handled here: the runner
//! reports it as skipped.

/// Applies `operator` (`equals` when absent) to `actual` and the `expected` value. `Ok` carries
/// a description of what passed, `Err` of what failed.
pub(super) fn compare(operator: &str, actual: &[String], expected: Option<&str>) -> Result<String, String> {
    let first = actual.first().map(String::as_str);
    let shown = first.map_or_else(|| "nothing".to_owned(), |f| format!("`{f}`"));
    let expected_value = || expected.ok_or_else(|| format!("operator `{operator}` needs a value"));
    let outcome = |ok: bool, what: String| if ok { Ok(what) } else { Err(format!("not true: {what}")) };
    match operator {
        "" | "equals" => {
            let e = expected_value()?;
            outcome(first == Some(e), format!("{shown} equals `{e}`"))
        }
        "notEquals" => {
            let e = expected_value()?;
            outcome(first != Some(e), format!("{shown} differs from `{e}`"))
        }
        "in" | "notIn" => {
            let e = expected_value()?;
            let found = first.is_some_and(|f| e.split(',').any(|item| item.trim() == f));
            let negated = operator == "notIn";
            outcome(found != negated, format!("{shown} is {}in `{e}`", if negated { "not " } else { "" }))
        }
        "greaterThan" | "lessThan" => {
            let e = expected_value()?;
            let Some(f) = first else { return Err(format!("nothing to compare with `{e}`")) };
            let ordering = match (f.trim().parse::<f64>(), e.trim().parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(f.cmp(e)),
            };
            let greater = operator == "greaterThan";
            let wanted = if greater { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less };
            outcome(
                ordering == Some(wanted),
                format!("{shown} is {} than `{e}`", if greater { "greater" } else { "less" }),
            )
        }
        "empty" => outcome(actual.iter().all(String::is_empty), format!("{shown} is empty")),
        "notEmpty" => outcome(actual.iter().any(|a| !a.is_empty()), format!("{shown} is not empty")),
        "contains" | "notContains" => {
            let e = expected_value()?;
            let found = first.is_some_and(|f| f.contains(e));
            let negated = operator == "notContains";
            outcome(
                found != negated,
                format!("{shown} {} `{e}`", if negated { "does not contain" } else { "contains" }),
            )
        }
        other => Err(format!("unknown operator `{other}`")),
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
        let pass = |op: &str, actual: &[String], expected: Option<&str>| compare(op, actual, expected).is_ok();
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

    #[test]
    fn missing_values_and_unknown_operators_fail_with_a_reason() {
        assert_eq!(compare("equals", &[], None), Err("operator `equals` needs a value".to_owned()));
        assert_eq!(compare("like", &[], Some("x")), Err("unknown operator `like`".to_owned()));
        assert_eq!(compare("equals", &["a".to_owned()], Some("b")), Err("not true: `a` equals `b`".to_owned()));
    }
}
