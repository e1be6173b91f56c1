//! The audit lines' timestamp: now in RFC 3339 with microseconds and `Z`
//! (`2026-12-06T19:33:12.123456Z`, what `tracing_subscriber`'s `SystemTime` writes), without
//! `core::fmt` on every line: the date and time up to the second are formatted once a second
//! per thread, the microseconds appended as digits.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends the current time.
pub fn now_into(out: &mut String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    at_into(out, now.as_secs(), now.subsec_micros());
}

/// Appends the time `seconds` after the epoch and `micros`.
fn at_into(out: &mut String, seconds: u64, micros: u32) {
    thread_local! {
        /// The last second formatted on this thread, and its text.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != seconds {
            text.clear();
            let at = i64::try_from(seconds)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
            let (hour, minute, sec) = at.time().as_hms();
            let _ = write!(text, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{sec:02}");
            *second = seconds;
        }
        out.push_str(text);
    });
    out.push('.');
    let mut digits = [b'0'; 6];
    let mut rest = micros.min(999_999);
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::time::FormatTime as _;

    fn at(seconds: u64, micros: u32) -> String {
        let mut text = String::new();
        at_into(&mut text, seconds, micros);
        text
    }

    #[test]
    fn dates_and_times_are_rfc_3339_with_microseconds() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_574_792, 123_456), "2026-12-06T16:33:12.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        // The cached second is replaced when the second changes.
        assert_eq!(at(1_796_574_793, 1), "2026-12-06T16:33:13.000001Z");
    }

    #[test]
    fn the_format_is_the_one_of_the_other_log_lines() {
        let mut theirs = String::new();
        let _ = tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut theirs));
        let mut ours = String::new();
        now_into(&mut ours);
        assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
        // The same up to the minute (both read the clock; a minute turning between them is rare
        // enough to ignore the seconds).
        assert_eq!(ours[..16], theirs[..16], "{ours} vs {theirs}");
    }
}
