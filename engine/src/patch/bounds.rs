//! How large a patch may make a resource. A patch body is parsed with serde_json's nesting limit,
//! but its operations can nest values into one another (add a deep value inside the deep value
//! the previous operation added) or duplicate them (JSON Patch `copy` doubles a document in one
//! operation): every value a patch puts into the resource is measured first, its nesting kept
//! within what a body may hold (so the result can be stored and read back) and its size charged
//! to the patch's work budget.

use serde_json::Value;

use crate::error::Error;
use crate::outcome::{Issue, IssueType};

/// Nesting of arrays and objects a patched resource may reach: serde_json reads at most 127, and
/// the resource must read back from the store.
pub(crate) const MAX_NESTING: usize = 127;

/// What a patch has put into the resource so far, against its budget.
#[derive(Debug)]
pub(crate) struct Tally {
    spent: u64,
    max: u64,
}

impl Tally {
    pub(crate) fn new(max: u64) -> Self {
        Self { spent: 0, max }
    }

    /// Checks `value`, about to be put `at` (the length of its location) below the root:
    /// the nesting it reaches and the values it holds.
    pub(crate) fn put(&mut self, at: usize, value: &Value) -> Result<(), Error> {
        let (nesting, count) = measure(value, self.max.saturating_sub(self.spent));
        self.spent = self.spent.saturating_add(count);
        if self.spent > self.max {
            return Err(too_costly(format!(
                "the patch puts more than {} values into the resource: it exceeds the work budget of this server",
                self.max
            )));
        }
        if at.saturating_add(nesting) > MAX_NESTING {
            return Err(too_costly(format!(
                "the patch would nest the resource deeper than {MAX_NESTING} levels of arrays and objects"
            )));
        }
        Ok(())
    }
}

/// The nesting of `value` (arrays and objects; a scalar is 0, `{}` is 1) and the number of values
/// in it, counting no further than `limit + 1`. Iterative: `value` may be deep.
pub(crate) fn measure(value: &Value, limit: u64) -> (usize, u64) {
    let mut stack = vec![(value, 0usize)];
    let (mut nesting, mut count) = (0usize, 0u64);
    while let Some((current, depth)) = stack.pop() {
        count += 1;
        if count > limit {
            break;
        }
        match current {
            Value::Object(map) => {
                nesting = nesting.max(depth + 1);
                stack.extend(map.values().map(|v| (v, depth + 1)));
            }
            Value::Array(items) => {
                nesting = nesting.max(depth + 1);
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    (nesting, count)
}

fn too_costly(message: String) -> Error {
    Error::Unprocessable(vec![Issue::error(IssueType::TooCostly, message)])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn measures_nesting_and_values() {
        assert_eq!(measure(&json!(1), 10), (0, 1));
        assert_eq!(measure(&json!({}), 10), (1, 1));
        assert_eq!(measure(&json!({"a": [1, {"b": 2}]}), 10), (3, 5));
        // Counting stops past the limit.
        assert_eq!(measure(&json!([1, 2, 3, 4, 5]), 2).1, 3);
    }

    #[test]
    fn refuses_deep_or_large_values() {
        let mut tally = Tally::new(100);
        assert!(tally.put(3, &json!({"a": {"b": 1}})).is_ok());
        let mut deep = json!(1);
        for _ in 0..10 {
            deep = json!([deep]);
        }
        assert!(tally.put(MAX_NESTING - 10, &deep).is_ok());
        let err = tally.put(MAX_NESTING - 9, &deep).map_err(|e| e.status());
        assert_eq!(err, Err(422));
        let big = Value::Array(vec![json!(1); 200]);
        let err = tally.put(0, &big).map_err(|e| e.to_string());
        assert!(err.as_ref().is_err_and(|m| m.contains("work budget")), "{err:?}");
    }
}
