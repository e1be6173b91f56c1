//! The R4 date and time formats: `date`, `dateTime`, `instant`, `time`
//! (<https://hl7.org/fhir/R4/datatypes.html#dateTime>), as the spec's regexes describe them, plus
//! the rule that dates must exist in the calendar (no `2021-02-30`).

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub(crate) fn date(s: &str) -> bool {
    matches!(parse_date(s.as_bytes()), Some((_, [])))
}

/// A date, optionally followed (only after a full date) by `Thh:mm:ss[.f+]` and a time zone.
pub(crate) fn date_time(s: &str) -> bool {
    match parse_date(s.as_bytes()) {
        Some((_, [])) => true,
        Some((true, [b'T', rest @ ..])) => time_and_zone(rest),
        _ => false,
    }
}

/// `YYYY-MM-DDThh:mm:ss[.f+]` and a time zone, all required.
pub(crate) fn instant(s: &str) -> bool {
    matches!(parse_date(s.as_bytes()), Some((true, [b'T', rest @ ..])) if time_and_zone(rest))
}

/// `hh:mm:ss[.f+]`, no time zone.
pub(crate) fn time(s: &str) -> bool {
    matches!(parse_time(s.as_bytes()), Some([]))
}

/// Parses a date prefix; returns whether it had a day, and the rest.
fn parse_date(b: &[u8]) -> Option<(bool, &[u8])> {
    let (year, rest) = digits(b, 4)?;
    if year == 0 {
        return None;
    }
    let [b'-', rest @ ..] = rest else { return Some((false, rest)) };
    let (month, rest) = digits(rest, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let [b'-', rest @ ..] = rest else { return Some((false, rest)) };
    let (day, rest) = digits(rest, 2)?;
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((true, rest))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `hh:mm:ss[.f+]`; returns the rest.
fn parse_time(b: &[u8]) -> Option<&[u8]> {
    let (hour, rest) = digits(b, 2)?;
    let [b':', rest @ ..] = rest else { return None };
    let (minute, rest) = digits(rest, 2)?;
    let [b':', rest @ ..] = rest else { return None };
    let (second, rest) = digits(rest, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    match rest {
        [b'.', fraction @ ..] => {
            let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            (n > 0).then(|| &fraction[n..])
        }
        _ => Some(rest),
    }
}

/// A time followed by `Z` or `(+|-)hh:mm` (hours up to 13, or exactly 14:00), and nothing else.
fn time_and_zone(b: &[u8]) -> bool {
    match parse_time(b) {
        Some([b'Z']) => true,
        Some([b'+' | b'-', zone @ ..]) => match digits(zone, 2) {
            Some((hour, [b':', minutes @ ..])) => match digits(minutes, 2) {
                Some((minute, [])) => (hour <= 13 && minute <= 59) || (hour == 14 && minute == 0),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// Exactly `n` ASCII digits as a number, and the rest.
fn digits(b: &[u8], n: usize) -> Option<(u32, &[u8])> {
    if b.len() < n || !b[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = b[..n].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
    Some((value, &b[n..]))
}
