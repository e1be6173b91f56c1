//! An exact decimal (`i128` mantissa and a decimal scale) that keeps the precision written in
//! the source (`1.50` has scale 2), as FHIRPath's `Decimal` and JSON's exact numbers need.

use std::cmp::Ordering;
use std::fmt;

/// `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Digits kept after the point by division and conversions from `f64`.
const DIV_SCALE: u32 = 8;
const MAX_SCALE: u32 = 28;

impl Decimal {
    pub(crate) fn from_i64(value: i64) -> Self {
        Self { mantissa: i128::from(value), scale: 0 }
    }

    /// Parses `-12.340`, `1e3`, `1.5E-2`.
    pub fn parse(text: &str) -> Option<Self> {
        let (number, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut scale = i64::try_from(frac.len()).ok()? - i64::from(exponent);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        let scale = u32::try_from(scale).ok()?;
        Some(Self { mantissa: if negative { -mantissa } else { mantissa }, scale }.limited())
    }

    pub(crate) fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        Self::parse(&format!("{value:.prec$}", prec = DIV_SCALE as usize)).map(Self::trimmed)
    }

    pub(crate) fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub(crate) fn scale(self) -> u32 {
        self.scale
    }

    pub(crate) fn is_integer(self) -> bool {
        self.mantissa % pow10(self.scale) == 0
    }

    /// The integer part, if it fits an `i64`.
    pub(crate) fn to_i64(self) -> Option<i64> {
        i64::try_from(self.mantissa / pow10(self.scale)).ok()
    }

    fn limited(self) -> Self {
        if self.scale > MAX_SCALE { self.rescale(MAX_SCALE) } else { self }
    }

    /// Drops trailing zeros after the point.
    pub fn trimmed(mut self) -> Self {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Rounds half away from zero to `scale` digits.
    pub(crate) fn rescale(self, scale: u32) -> Self {
        if scale >= self.scale {
            let factor = pow10(scale - self.scale);
            return match self.mantissa.checked_mul(factor) {
                Some(mantissa) => Self { mantissa, scale },
                None => self,
            };
        }
        let factor = pow10(self.scale - scale);
        let (q, r) = (self.mantissa / factor, self.mantissa % factor);
        let q = if r.abs() * 2 >= factor { q + self.mantissa.signum() } else { q };
        Self { mantissa: q, scale }
    }

    fn aligned(self, other: Self) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        let a = self.mantissa.checked_mul(pow10(scale - self.scale))?;
        let b = other.mantissa.checked_mul(pow10(scale - other.scale))?;
        Some((a, b, scale))
    }

    pub(crate) fn checked_add(self, other: Self) -> Option<Self> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Self { mantissa: a.checked_add(b)?, scale })
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.checked_add(Self { mantissa: other.mantissa.checked_neg()?, scale: other.scale })
    }

    pub(crate) fn checked_mul(self, other: Self) -> Option<Self> {
        let mantissa = self.mantissa.checked_mul(other.mantissa)?;
        Some(Self { mantissa, scale: self.scale + other.scale }.limited())
    }

    /// Division to [`DIV_SCALE`] digits, trailing zeros dropped; `None` for division by zero.
    pub(crate) fn checked_div(self, other: Self) -> Option<Self> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, _) = self.aligned(other)?;
        let a = a.checked_mul(pow10(DIV_SCALE + 1))?;
        let q = Self { mantissa: a / b, scale: DIV_SCALE + 1 };
        Some(q.rescale(DIV_SCALE).trimmed())
    }

    /// Truncating division (`div`).
    pub(crate) fn int_div(self, other: Self) -> Option<Self> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, _) = self.aligned(other)?;
        Some(Self { mantissa: a / b, scale: 0 })
    }

    /// Remainder (`mod`) with the sign of the dividend.
    pub(crate) fn checked_rem(self, other: Self) -> Option<Self> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, scale) = self.aligned(other)?;
        Some(Self { mantissa: a % b, scale })
    }

    pub fn negated(self) -> Self {
        Self { mantissa: -self.mantissa, scale: self.scale }
    }

    pub(crate) fn abs(self) -> Self {
        Self { mantissa: self.mantissa.abs(), scale: self.scale }
    }

    /// Rounded down (`up` false) or up to `scale` digits; padded when already that precise.
    pub(crate) fn round_to(self, scale: u32, up: bool) -> Self {
        if scale >= self.scale {
            return self.rescale(scale);
        }
        let factor = pow10(self.scale - scale);
        let mantissa = if up { -(-self.mantissa).div_euclid(factor) } else { self.mantissa.div_euclid(factor) };
        Self { mantissa, scale }
    }

    /// `lowBoundary`/`highBoundary`: the value ± half a unit of its last digit, to `scale`.
    pub(crate) fn boundary(self, scale: u32, high: bool) -> Option<Self> {
        let half = Self { mantissa: 5, scale: self.scale + 1 };
        let edge = if high { self.checked_add(half)? } else { self.checked_sub(half)? };
        Some(edge.round_to(scale, high))
    }

    pub fn truncate(self) -> Self {
        Self { mantissa: self.mantissa / pow10(self.scale), scale: 0 }
    }

    pub fn floor(self) -> Self {
        let t = self.truncate();
        if self.mantissa < 0 && !self.is_integer() { t.checked_sub(Self::from_i64(1)).unwrap_or(t) } else { t }
    }

    pub(crate) fn ceiling(self) -> Self {
        let t = self.truncate();
        if self.mantissa > 0 && !self.is_integer() { t.checked_add(Self::from_i64(1)).unwrap_or(t) } else { t }
    }
}

fn pow10(n: u32) -> i128 {
    10_i128.checked_pow(n).unwrap_or(i128::MAX)
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.aligned(*other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}
