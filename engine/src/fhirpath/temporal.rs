//! Partial dates, date-times and times (`@2012`, `@2012-04-15T10:00+10:00`, `@T14:30`) with
//! the precision written, compared per the FHIRPath rules (differing precision is "unknown").

use std::cmp::Ordering;
use std::fmt;

/// Which of the three temporal types a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalKind {
    Date,
    DateTime,
    Time,
}

/// Components: year, month, day, hour, minute, second, millisecond. A `Time` uses the last four.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporal {
    pub kind: TemporalKind,
    parts: [i64; 7],
    /// Index one past the last component present.
    precision: usize,
    /// Offset from UTC in minutes, when written.
    tz: Option<i64>,
}

const YEAR: usize = 0;
const MONTH: usize = 1;
const DAY: usize = 2;
const HOUR: usize = 3;
const MINUTE: usize = 4;
const SECOND: usize = 5;
const MILLI: usize = 6;

impl Temporal {
    /// Parses a date (`2012-04`), a date-time (`2012-04-15T10:00:00.000Z`, also `2012T`) or,
    /// with `kind` `Time`, a time (`14:30:00`). Returns `None` when malformed.
    pub fn parse(text: &str, kind: TemporalKind) -> Option<Self> {
        let mut parts = [0_i64, 1, 1, 0, 0, 0, 0];
        if kind == TemporalKind::Time {
            let precision = parse_time(text, &mut parts)?;
            return Some(Self { kind, parts, precision, tz: None });
        }
        let (date, rest) = match text.find('T') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let mut precision = 0;
        for (i, piece) in date.split('-').enumerate() {
            let width = if i == 0 { 4 } else { 2 };
            if i > 2 || piece.len() != width || !piece.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[i] = piece.parse().ok()?;
            precision = i + 1;
        }
        if parts[MONTH] > 12
            || parts[MONTH] < 1
            || parts[DAY] < 1
            || parts[DAY] > days_in_month(parts[YEAR], parts[MONTH])
        {
            return None;
        }
        let mut tz = None;
        let kind = match rest {
            None if kind == TemporalKind::Date => TemporalKind::Date,
            None => TemporalKind::DateTime,
            Some(rest) => {
                let (time, zone) = split_zone(rest);
                if !time.is_empty() {
                    if precision < 3 {
                        return None;
                    }
                    precision = parse_time(time, &mut parts)?;
                }
                tz = match zone {
                    None => None,
                    Some(zone) => Some(parse_zone(zone)?),
                };
                TemporalKind::DateTime
            }
        };
        Some(Self { kind, parts, precision, tz })
    }

    /// A date or date-time from the parts of another (used by `toDate()` and for comparing a
    /// Date with a DateTime).
    pub(crate) fn with_kind(&self, kind: TemporalKind) -> Self {
        let mut out = self.clone();
        out.kind = kind;
        if kind == TemporalKind::Date {
            out.precision = out.precision.min(3);
            out.tz = None;
        }
        out
    }

    pub fn now(kind: TemporalKind) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let parts = [
            i64::from(now.year()),
            i64::from(u8::from(now.month())),
            i64::from(now.day()),
            i64::from(now.hour()),
            i64::from(now.minute()),
            i64::from(now.second()),
            i64::from(now.millisecond()),
        ];
        let precision = if kind == TemporalKind::Date { 3 } else { 7 };
        let tz = (kind == TemporalKind::DateTime).then_some(0);
        Self { kind, parts, precision, tz }
    }

    /// `precision()`: the digits written (`@2014` is 4, `@T10:30` is 4, milliseconds 17/9).
    pub(crate) fn digits(&self) -> i64 {
        const DIGITS: [i64; 8] = [0, 4, 6, 8, 10, 12, 14, 17];
        let digits = DIGITS[self.precision.min(7)];
        if self.kind == TemporalKind::Time { digits - 8 } else { digits }
    }

    /// `lowBoundary`/`highBoundary` to `digits` (as [`Self::digits`] counts; the most precise
    /// when `None`): missing parts become their least or greatest value, and a date-time without
    /// a zone takes the earliest (+14:00) or latest (-12:00) one.
    pub(crate) fn boundary(&self, digits: Option<i64>, high: bool) -> Option<Self> {
        let time = self.kind == TemporalKind::Time;
        let digits = digits.unwrap_or(match self.kind {
            TemporalKind::Date => 8,
            TemporalKind::DateTime => 17,
            TemporalKind::Time => 9,
        });
        let precision = match (time, digits) {
            (false, 4) => 1,
            (false, 6) => 2,
            (false, 8) => 3,
            (false, 10) | (true, 2) => 4,
            (false, 12) | (true, 4) => 5,
            (false, 14) | (true, 6) => 6,
            (false, 17) | (true, 9) => 7,
            _ => return None,
        };
        if self.kind == TemporalKind::Date && precision > 3 {
            return None;
        }
        let mut out = self.clone();
        // FHIR has no hour-only times: `T08` is `T08:00`.
        if out.precision == HOUR + 1 {
            out.precision = MINUTE + 1;
            out.parts[MINUTE] = 0;
        }
        for i in out.precision..precision {
            out.parts[i] = match (i, high) {
                (MONTH, true) => 12,
                (DAY, true) => days_in_month(out.parts[YEAR], out.parts[MONTH]),
                (HOUR, true) => 23,
                (MINUTE | SECOND, true) => 59,
                (MILLI, true) => 999,
                (MONTH | DAY, false) => 1,
                _ => 0,
            };
        }
        out.precision = precision;
        if self.kind == TemporalKind::DateTime && precision > DAY + 1 && out.tz.is_none() {
            out.tz = Some(if high { -12 * 60 } else { 14 * 60 });
        }
        if precision <= DAY + 1 {
            out.tz = None;
        }
        Some(out)
    }

    fn first(&self) -> usize {
        if self.kind == TemporalKind::Time { HOUR } else { YEAR }
    }

    /// The parts, normalised to UTC when a zone was written and hours are present.
    fn normalised(&self) -> [i64; 7] {
        match self.tz {
            Some(offset) if offset != 0 && self.precision > HOUR && self.kind != TemporalKind::Time => {
                let mut parts = self.parts;
                let minutes =
                    days_from_civil(parts[YEAR], parts[MONTH], parts[DAY]) * 1440 + parts[HOUR] * 60 + parts[MINUTE]
                        - offset;
                set_from_minutes(&mut parts, minutes);
                parts
            }
            _ => self.parts,
        }
    }

    /// FHIRPath comparison: `None` when the values differ only in precision.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        // A zoned and a local date-time with a time part cannot be ordered.
        if self.tz.is_some() != other.tz.is_some() && self.precision > HOUR && other.precision > HOUR {
            return None;
        }
        let (a, b) = (self.normalised(), other.normalised());
        // Seconds and milliseconds count as one precision.
        let pa = if self.precision == MILLI { MILLI + 1 } else { self.precision };
        let pb = if other.precision == MILLI { MILLI + 1 } else { other.precision };
        let common = pa.min(pb);
        for i in self.first()..common.max(self.first()) {
            match a[i].cmp(&b[i]) {
                Ordering::Equal => {}
                other => return Some(other),
            }
        }
        let sec = |p: usize| if p > SECOND { SECOND + 1 } else { p };
        if sec(pa) != sec(pb) {
            return None;
        }
        Some(Ordering::Equal)
    }

    /// Adds `amount` of a calendar unit (`year`, `month`, `week`, `day`, `hour`, `minute`,
    /// `second`, `millisecond`); `None` for other units.
    pub fn add(&self, amount: i64, unit: &str) -> Option<Self> {
        // Far beyond any year 1-9999 result; keeps the arithmetic below from overflowing.
        if amount.unsigned_abs() > 1_000_000_000_000 {
            return None;
        }
        let mut out = self.add_unchecked(amount, unit)?;
        if self.kind != TemporalKind::Time && !(1..=9999).contains(&out.parts[YEAR]) {
            return None;
        }
        out.kind = self.kind;
        Some(out)
    }

    fn add_unchecked(&self, amount: i64, unit: &str) -> Option<Self> {
        let mut out = self.clone();
        let p = &mut out.parts;
        match unit {
            "year" | "years" => p[YEAR] += amount,
            "month" | "months" => {
                let total = p[YEAR] * 12 + (p[MONTH] - 1) + amount;
                p[YEAR] = total.div_euclid(12);
                p[MONTH] = total.rem_euclid(12) + 1;
            }
            "week" | "weeks" | "wk" => return self.add(amount.checked_mul(7)?, "day"),
            "day" | "days" | "d" => {
                let days = days_from_civil(p[YEAR], p[MONTH], p[DAY]) + amount;
                (p[YEAR], p[MONTH], p[DAY]) = civil_from_days(days);
            }
            "hour" | "hours" | "h" => return self.add(amount.checked_mul(60)?, "minute"),
            "minute" | "minutes" | "min" => {
                let minutes = days_from_civil(p[YEAR], p[MONTH], p[DAY]) * 1440 + p[HOUR] * 60 + p[MINUTE] + amount;
                if self.kind == TemporalKind::Time {
                    let m = minutes.rem_euclid(1440);
                    (p[HOUR], p[MINUTE]) = (m / 60, m % 60);
                } else {
                    set_from_minutes(p, minutes);
                }
            }
            "second" | "seconds" | "s" => {
                let total = p[SECOND] + amount;
                p[SECOND] = total.rem_euclid(60);
                return out.add(total.div_euclid(60), "minute").map(|mut t| {
                    t.parts[SECOND] = total.rem_euclid(60);
                    t
                });
            }
            "millisecond" | "milliseconds" | "ms" => {
                let total = p[MILLI] + amount;
                p[MILLI] = total.rem_euclid(1000);
                return out.add(total.div_euclid(1000), "second").map(|mut t| {
                    t.parts[MILLI] = total.rem_euclid(1000);
                    t
                });
            }
            _ => return None,
        }
        let max = days_in_month(p[YEAR], p[MONTH]);
        if p[DAY] > max {
            p[DAY] = max;
        }
        Some(out)
    }
}

fn split_zone(text: &str) -> (&str, Option<&str>) {
    if let Some(t) = text.strip_suffix('Z') {
        return (t, Some("Z"));
    }
    match text.rfind(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    }
}

fn parse_zone(zone: &str) -> Option<i64> {
    if zone == "Z" {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (h, m) = zone.get(1..)?.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Some(sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?))
}

/// Parses `hh(:mm(:ss(.fff)?)?)?` into `parts`; returns the precision.
fn parse_time(text: &str, parts: &mut [i64; 7]) -> Option<usize> {
    let mut precision = HOUR;
    let (main, frac) = match text.split_once('.') {
        Some((main, frac)) => (main, Some(frac)),
        None => (text, None),
    };
    for (i, piece) in main.split(':').enumerate() {
        if i > 2 || piece.len() != 2 || !piece.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: i64 = piece.parse().ok()?;
        if value > [23, 59, 59][i] {
            return None;
        }
        parts[HOUR + i] = value;
        precision = HOUR + i + 1;
    }
    if let Some(frac) = frac {
        if precision != SECOND + 1 || frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ms: String = format!("{frac:0<3}").chars().take(3).collect();
        parts[MILLI] = ms.parse().ok()?;
        precision = MILLI + 1;
    }
    Some(precision)
}

fn set_from_minutes(parts: &mut [i64; 7], minutes: i64) {
    let days = minutes.div_euclid(1440);
    let rest = minutes.rem_euclid(1440);
    (parts[YEAR], parts[MONTH], parts[DAY]) = civil_from_days(days);
    parts[HOUR] = rest / 60;
    parts[MINUTE] = rest % 60;
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        let first = self.first();
        for i in first..self.precision {
            match i {
                YEAR => write!(f, "{:04}", p[YEAR])?,
                MONTH | DAY => write!(f, "-{:02}", p[i])?,
                HOUR if first == HOUR => write!(f, "{:02}", p[HOUR])?,
                HOUR => write!(f, "T{:02}", p[HOUR])?,
                MINUTE | SECOND => write!(f, ":{:02}", p[i])?,
                _ => write!(f, ".{:03}", p[MILLI])?,
            }
        }
        if let Some(tz) = self.tz {
            if tz == 0 {
                write!(f, "Z")?;
            } else {
                let sign = if tz < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", tz.abs() / 60, tz.abs() % 60)?;
            }
        }
        Ok(())
    }
}
