//! `string` parameters: plain strings, and the parts of `HumanName` and `Address`, each
//! normalised (lowercase, accents removed) so `:exact` aside, matching is case- and
//! accent-insensitive as search.html asks.

use serde_json::Value;

use super::primitive_text;
use crate::fhirpath::Item;
use crate::storage::IndexValue;

const HUMAN_NAME: &[&str] = &["family", "given", "prefix", "suffix", "text"];
const ADDRESS: &[&str] = &["line", "city", "district", "state", "postalCode", "country", "text"];

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    let parts = match item.type_name() {
        Some("HumanName") => HUMAN_NAME,
        Some("Address") => ADDRESS,
        _ => return primitive_text(item).map(|s| vec![string(&s)]).unwrap_or_default(),
    };
    let Some(json) = item.to_json() else { return Vec::new() };
    let mut out = Vec::new();
    for part in parts {
        match json.get(*part) {
            Some(Value::String(s)) => out.push(string(s)),
            Some(Value::Array(list)) => out.extend(list.iter().filter_map(Value::as_str).map(string)),
            _ => {}
        }
    }
    out
}

fn string(text: &str) -> IndexValue {
    IndexValue::String { value: normalize(text), exact: text.to_owned() }
}

/// Lowercases and strips the diacritics of Latin-1 and Latin Extended-A letters
/// (`Müller` → `muller`, `Łódź` → `lodz`); other characters are only lowercased.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(s) => out.push_str(s),
            None => out.push(c),
        }
    }
    out
}

/// The unaccented form of a lowercase Latin-1 / Latin Extended-A letter.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' | 'ĸ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' => "t",
        'þ' => "th",
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        // Combining diacritical marks (decomposed input) are dropped.
        '\u{300}'..='\u{36f}' => "",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(normalize("Müller"), "muller");
        assert_eq!(normalize("ŁÓDŹ Straße"), "lodz strasse");
        assert_eq!(normalize("Mu\u{308}ller"), "muller");
        assert_eq!(normalize("Ωμέγα"), "ωμέγα");
    }

    #[test]
    fn human_name_parts() {
        let name = serde_json::json!({"family": "Chalmers", "given": ["Peter", "James"], "use": "official"});
        let item = Item::Node(crate::fhirpath::Node::typed(&name, "HumanName"));
        let got: Vec<_> = values(&item)
            .into_iter()
            .map(|v| match v {
                IndexValue::String { value, .. } => value,
                _ => String::new(),
            })
            .collect();
        assert_eq!(got, ["chalmers", "peter", "james"]);
    }
}
