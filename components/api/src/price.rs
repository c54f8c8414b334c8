//! Prices: exact decimals with at most two places, 0 <= price < 100,000,000,
//! kept as integer cents. Never rounded: `12.345` is refused, not stored as 12.35.

use std::fmt;

/// The exclusive upper bound, in cents.
const MAX_CENTS: i64 = 100_000_000 * 100;

/// A validated price in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceError {
    /// Not a decimal number at all.
    NotANumber,
    /// More than two decimal places.
    TooPrecise,
    Negative,
    TooLarge,
}

impl fmt::Display for PriceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriceError::NotANumber => "Input should be a valid decimal",
            PriceError::TooPrecise => "Decimal input should have no more than 2 decimal places",
            PriceError::Negative => "Input should be greater than or equal to 0",
            PriceError::TooLarge => "Input should be less than 100000000",
        })
    }
}

impl Price {
    pub fn from_cents(cents: i64) -> Option<Self> {
        (0..MAX_CENTS).contains(&cents).then_some(Self(cents))
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses the exact text of a JSON number or numeric string:
    /// `12`, `12.5`, `12.50`, `1e2` (= 100), `-0` (= 0).
    pub fn parse(text: &str) -> Result<Self, PriceError> {
        let text = text.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().map_err(|_| PriceError::NotANumber)?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(PriceError::NotANumber);
        }
        // All digits, and where the decimal point falls after the exponent.
        let digits: String = format!("{whole}{fraction}");
        let point = whole.len() as i64 + i64::from(exponent);
        let digits = digits.trim_start_matches('0');
        let leading_zeros = format!("{whole}{fraction}").len() - digits.len();
        let point = point - leading_zeros as i64;
        let significant = digits.trim_end_matches('0');
        if significant.is_empty() {
            return Ok(Self(0));
        }
        if significant.len() as i64 - point > 2 {
            return Err(PriceError::TooPrecise);
        }
        if negative {
            return Err(PriceError::Negative);
        }
        if point > 12 {
            return Err(PriceError::TooLarge);
        }
        // cents = significant digits shifted so that two places follow the point.
        let shift = point + 2 - significant.len() as i64;
        let mut cents: i64 = significant.parse().map_err(|_| PriceError::TooLarge)?;
        for _ in 0..shift {
            cents = cents.checked_mul(10).ok_or(PriceError::TooLarge)?;
        }
        Self::from_cents(cents).ok_or(PriceError::TooLarge)
    }
}

impl fmt::Display for Price {
    /// Always two decimals: `12.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_prices_parse() {
        for (text, cents) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("0", 0),
            ("-0", 0),
            ("0.00", 0),
            ("99999999.99", 9_999_999_999),
            ("1e2", 10_000),
            ("1.5E1", 1500),
            ("125e-2", 125),
            ("007.10", 710),
        ] {
            assert_eq!(Price::parse(text).map(Price::cents), Ok(cents), "{text}");
        }
    }

    #[test]
    fn inexact_or_out_of_range_prices_are_refused() {
        assert_eq!(Price::parse("12.345"), Err(PriceError::TooPrecise));
        assert_eq!(Price::parse("0.001"), Err(PriceError::TooPrecise));
        assert_eq!(Price::parse("1e-3"), Err(PriceError::TooPrecise));
        assert_eq!(Price::parse("-1"), Err(PriceError::Negative));
        assert_eq!(Price::parse("-0.01"), Err(PriceError::Negative));
        assert_eq!(Price::parse("100000000"), Err(PriceError::TooLarge));
        assert_eq!(Price::parse("1e8"), Err(PriceError::TooLarge));
        assert_eq!(Price::parse("1e400"), Err(PriceError::TooLarge));
        for bad in [
            "", ".", "abc", "1.2.3", "1,5", "NaN", "Infinity", "0x10", " ",
        ] {
            assert_eq!(Price::parse(bad), Err(PriceError::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn prices_render_with_two_decimals() {
        assert_eq!(Price::parse("12.5").unwrap().to_string(), "12.50");
        assert_eq!(Price::parse("0").unwrap().to_string(), "0.00");
        assert_eq!(
            Price::parse("99999999.99").unwrap().to_string(),
            "99999999.99"
        );
    }
}
