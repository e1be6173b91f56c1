//! Translates the simple XPath that real TestScripts put in `assert.path`, `variable.path` and
//! `compareToSourcePath` into FHIRPath, so one evaluator serves both:
//!
//! | XPath | FHIRPath |
//! |---|---|
//! | `fhir:Bundle/fhir:type/@value` | `Bundle.type` |
//! | `/fhir:Bundle/fhir:entry[1]/fhir:resource/fhir:Patient/fhir:id/@value` | `Bundle.entry[0].resource.ofType(Patient).id` |
//! | `fhir:Patient/fhir:name[fhir:use/@value='official']/fhir:family/@value` | `Patient.name.where(use = 'official').family` |
//! | `count(fhir:Bundle/fhir:entry)` | `(Bundle.entry).count()` |
//! | `not(fhir:Patient/fhir:active)` | `(Patient.active).not()` |
//!
//! Also `=`, `!=`, `<`, `>`, `<=`, `>=`, `and`, `or`, string and number literals, and
//! `@id`/`@url` attributes. Anything else (axes, `//`, other functions) is [`Error::XPath`].

use crate::error::{Error, Result};

/// The FHIRPath equivalent of an XPath expression.
pub(crate) fn to_fhirpath(xpath: &str) -> Result<String> {
    expression(xpath.trim()).map_err(|()| Error::XPath(xpath.to_owned()))
}

type Translated = std::result::Result<String, ()>;

fn expression(x: &str) -> Translated {
    let x = x.trim();
    if x.is_empty() {
        return Err(());
    }
    for op in [" or ", " and "] {
        if let Some(at) = find_top_level(x, op) {
            return Ok(format!("{} {} {}", expression(&x[..at])?, op.trim(), expression(&x[at + op.len()..])?));
        }
    }
    for op in ["!=", "<=", ">=", "=", "<", ">"] {
        if let Some(at) = find_top_level(x, op) {
            return Ok(format!("{} {op} {}", expression(&x[..at])?, expression(&x[at + op.len()..])?));
        }
    }
    if let Some(quote) = x.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let inner = x.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)).ok_or(())?;
        return Ok(format!("'{}'", inner.replace('\\', "\\\\").replace('\'', "\\'")));
    }
    if x.parse::<f64>().is_ok() {
        return Ok(x.to_owned());
    }
    for function in ["count", "not"] {
        if let Some(inner) = call(x, function) {
            return Ok(format!("({}).{function}()", expression(inner)?));
        }
    }
    if x.starts_with('(') && closing(x, 0) == Some(x.len() - 1) {
        return Ok(format!("({})", expression(&x[1..x.len() - 1])?));
    }
    path(x)
}

/// `name(inner)` → `inner`, when the parentheses enclose the rest.
fn call<'a>(x: &'a str, name: &str) -> Option<&'a str> {
    let rest = x.strip_prefix(name)?.trim_start();
    let open = x.len() - rest.len();
    (rest.starts_with('(') && closing(x, open) == Some(x.len() - 1)).then(|| &x[open + 1..x.len() - 1])
}

/// The index of the bracket closing the one at `open`, skipping quoted text.
fn closing(x: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in x.char_indices().skip_while(|(i, _)| *i < open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The first occurrence of `needle` outside brackets and quotes.
fn find_top_level(x: &str, needle: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote = None;
    for (i, c) in x.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            _ if depth == 0 && x[i..].starts_with(needle) => {
                // `!=`, `<=`, `>=` are not `=`, `<`, `>`.
                let before = x[..i].chars().next_back();
                let after = x[i + needle.len()..].chars().next();
                let part_of_longer = (needle == "=" && matches!(before, Some('!' | '<' | '>')))
                    || (matches!(needle, "<" | ">") && after == Some('='));
                if !part_of_longer {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A location path: steps separated by `/`, each with optional predicates.
fn path(x: &str) -> Translated {
    if x.contains("//") || x.contains("::") {
        return Err(());
    }
    let x = x.strip_prefix('/').unwrap_or(x);
    let mut steps = Vec::new();
    let mut start = 0;
    let mut depth = 0i32;
    for (i, c) in x.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            '/' if depth == 0 => {
                steps.push(&x[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    steps.push(&x[start..]);
    let mut out: Vec<String> = Vec::new();
    for (index, step) in steps.into_iter().enumerate() {
        let step = step.trim();
        let (name, predicates) = match step.find('[') {
            Some(at) => (&step[..at], &step[at..]),
            None => (step, ""),
        };
        let name = name.strip_prefix("fhir:").unwrap_or(name);
        let mut translated = match name {
            "@value" => continue,
            "@id" | "@url" => name[1..].to_owned(),
            "*" => "children()".to_owned(),
            "." => "$this".to_owned(),
            n if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => return Err(()),
            n if index > 0 && n.starts_with(|c: char| c.is_ascii_uppercase()) => format!("ofType({n})"),
            n => n.to_owned(),
        };
        let mut rest = predicates;
        while !rest.is_empty() {
            let end = closing(rest, 0).ok_or(())?;
            let predicate = rest[1..end].trim();
            match predicate.parse::<usize>() {
                Ok(position) if position > 0 => translated.push_str(&format!("[{}]", position - 1)),
                Ok(_) => return Err(()),
                Err(_) if predicate == "last()" => translated.push_str(".last()"),
                Err(_) => translated.push_str(&format!(".where({})", expression(predicate)?)),
            }
            rest = rest[end + 1..].trim_start();
        }
        out.push(translated);
    }
    if out.is_empty() {
        return Err(());
    }
    Ok(out.join("."))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::to_fhirpath;

    #[test]
    fn paths_of_real_scripts() {
        let cases = [
            ("fhir:Bundle/fhir:type/@value", "Bundle.type"),
            ("fhir:Patient/fhir:name/fhir:family/@value", "Patient.name.family"),
            (
                "/fhir:Bundle/fhir:entry[1]/fhir:resource/fhir:Patient/fhir:id/@value",
                "Bundle.entry[0].resource.ofType(Patient).id",
            ),
            (
                "fhir:Patient/fhir:name[fhir:use/@value='official']/fhir:family/@value",
                "Patient.name.where(use = 'official').family",
            ),
            ("count(fhir:Bundle/fhir:entry)", "(Bundle.entry).count()"),
            ("count(fhir:Bundle/fhir:entry) > 0", "(Bundle.entry).count() > 0"),
            ("not(fhir:Patient/fhir:active)", "(Patient.active).not()"),
            ("fhir:Patient/fhir:extension/@url", "Patient.extension.url"),
            ("fhir:Patient/fhir:gender/@value != \"male\"", "Patient.gender != 'male'"),
            (
                "fhir:Bundle/fhir:total/@value >= 1 and fhir:Bundle/fhir:type/@value = 'searchset'",
                "Bundle.total >= 1 and Bundle.type = 'searchset'",
            ),
            ("fhir:Bundle/fhir:entry[last()]/fhir:fullUrl/@value", "Bundle.entry.last().fullUrl"),
        ];
        for (xpath, fhirpath) in cases {
            assert_eq!(to_fhirpath(xpath).unwrap(), fhirpath, "{xpath}");
        }
    }

    #[test]
    fn translations_evaluate_like_the_xpath() {
        use fhirgate_engine::fhirpath::{Env, evaluate, parse};
        let bundle = serde_json::json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a", "name": [{"use": "official", "family": "Chalmers"}]}},
            {"resource": {"resourceType": "Observation", "id": "b"}}
        ]});
        let eval = |xpath: &str| {
            let expr = parse(&to_fhirpath(xpath).unwrap()).unwrap();
            evaluate(&expr, &bundle, &Env::new())
                .unwrap()
                .iter()
                .map(|i| i.to_json().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(eval("fhir:Bundle/fhir:entry/fhir:resource/fhir:Patient/fhir:id/@value"), ["\"a\""]);
        assert_eq!(eval("count(fhir:Bundle/fhir:entry)"), ["2"]);
        assert_eq!(eval("fhir:Bundle/fhir:entry[2]/fhir:resource/fhir:Observation/fhir:id/@value"), ["\"b\""]);
        assert_eq!(
            eval(
                "fhir:Bundle/fhir:entry/fhir:resource/fhir:Patient/fhir:name[fhir:use/@value='official']/fhir:family/@value"
            ),
            ["\"Chalmers\""]
        );
    }

    #[test]
    fn unsupported_xpath_is_an_error() {
        for xpath in ["//fhir:id", "ancestor::fhir:Patient", "", "fhir:a/fhir:b[", "string-length(fhir:x)"] {
            assert!(to_fhirpath(xpath).is_err(), "{xpath}");
        }
    }
}
