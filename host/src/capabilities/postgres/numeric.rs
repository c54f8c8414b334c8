//! Postgres NUMERIC values as exact decimal strings, read from the binary
//! wire format so the column's scale is kept (`numeric(20,6)` 12.5 is
//! "12.500000"): sqlx's `BigDecimal` decoding drops trailing zeros. Also the
//! arrays and ranges of NUMERIC, which carry the same element format.

/// One NUMERIC value: `ndigits, weight, sign, dscale` then base-10000 digits.
pub fn numeric(bytes: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0xC000 => return Some("NaN".to_string()),
        0xD000 => return Some("Infinity".to_string()),
        0xF000 => return Some("-Infinity".to_string()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let digit = |position: i32| -> u16 {
        // position 0 is the group just left of the decimal point.
        let index = weight - position;
        if index >= 0 && (index as usize) < digits.len() {
            digits[index as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for position in (0..=weight).rev() {
            let group = digit(position);
            if out.is_empty() || out == "-" {
                out.push_str(&group.to_string());
            } else {
                out.push_str(&format!("{group:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::new();
        let mut position = -1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(position)));
            position -= 1;
        }
        fraction.truncate(dscale);
        out.push_str(&fraction);
    }
    Some(out)
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// A one-dimensional NUMERIC[]; `None` for SQL NULL elements.
pub fn numeric_array(bytes: &[u8]) -> Option<Vec<Option<String>>> {
    let dimensions = i32_at(bytes, 0)?;
    if dimensions == 0 {
        return Some(Vec::new());
    }
    if dimensions != 1 {
        return None;
    }
    let count = i32_at(bytes, 12)? as usize;
    let mut at = 20;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i32_at(bytes, at)?;
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let len = len as usize;
            out.push(Some(numeric(bytes.get(at..at + len)?)?));
            at += len;
        }
    }
    Some(out)
}

/// A NUMRANGE: (lower, upper), each `None` when unbounded, with inclusivity.
pub type NumericBound = Option<(String, bool)>;

pub fn numeric_range(bytes: &[u8]) -> Option<(NumericBound, NumericBound)> {
    const EMPTY: u8 = 0x01;
    const LOWER_INCLUSIVE: u8 = 0x02;
    const UPPER_INCLUSIVE: u8 = 0x04;
    const LOWER_INFINITE: u8 = 0x08;
    const UPPER_INFINITE: u8 = 0x10;
    let flags = *bytes.first()?;
    if flags & EMPTY != 0 {
        return Some((None, None));
    }
    let mut at = 1;
    let mut read = |present: bool, inclusive: bool| -> Option<NumericBound> {
        if !present {
            return Some(None);
        }
        let len = i32_at(bytes, at)? as usize;
        at += 4;
        let value = numeric(bytes.get(at..at + len)?)?;
        at += len;
        Some(Some((value, inclusive)))
    };
    let lower = read(flags & LOWER_INFINITE == 0, flags & LOWER_INCLUSIVE != 0)?;
    let upper = read(flags & UPPER_INFINITE == 0, flags & UPPER_INCLUSIVE != 0)?;
    Some((lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_keep_their_scale() {
        // 12345678901234.5 as numeric(20,6): groups 12 3456 7890 1234 . 5000
        assert_eq!(
            numeric(&encode(3, 0, 6, &[12, 3456, 7890, 1234, 5000])).as_deref(),
            Some("12345678901234.500000")
        );
        assert_eq!(
            numeric(&encode(0, 0x4000, 2, &[1, 1000])).as_deref(),
            Some("-1.10")
        );
        assert_eq!(numeric(&encode(-1, 0, 4, &[5])).as_deref(), Some("0.0005"));
        assert_eq!(numeric(&encode(0, 0, 0, &[])).as_deref(), Some("0"));
        assert_eq!(numeric(&encode(1, 0, 0, &[1])).as_deref(), Some("10000"));
        assert_eq!(numeric(&encode(0, 0, 2, &[])).as_deref(), Some("0.00"));
        assert_eq!(numeric(&encode(0, 0xC000, 0, &[])).as_deref(), Some("NaN"));
    }
}
