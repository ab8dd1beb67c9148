//! Money: euros as `rust_decimal::Decimal`, exactly two decimals on the wire, computed amounts
//! rounded half away from zero to the cent.

use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

/// Lexically an xs:decimal: `[+-]?(d+(.d*)?|.d+)`.
pub fn is_decimal_lexical(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let int_ok = int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    let some_digit = !int.is_empty() || frac.is_some_and(|f| !f.is_empty());
    int_ok && frac_ok && some_digit
}

/// An amount as the rules accept it: non-negative, digits, a dot and exactly two decimals
/// (`12.50`; a leading `+` is tolerated). Anything else is `None` (R05 in a request).
pub fn parse_amount(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let (int, frac) = body.split_once('.')?;
    if int.is_empty()
        || frac.len() != 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 15
    {
        return None;
    }
    Decimal::from_str(body).ok()
}

/// Round to the cent, half away from zero.
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `d × rate / 100`, rounded to the cent half away from zero.
pub fn percent(d: Decimal, rate: u32) -> Decimal {
    round_cents(d * Decimal::from(rate) / Decimal::from(100))
}

/// The float-rounding defect: `d × rate / 100` computed in `f64` and rounded to the cent with
/// IEEE's default ties-to-even (`round_ties_even`, like Python's `round`), so that an exact
/// half cent goes to the even cent: 24.69 × 50 % gives 12.34 instead of 12.35.
pub fn percent_f64(d: Decimal, rate: u32) -> Decimal {
    let v: f64 = d.to_string().parse::<f64>().unwrap_or(0.0) * f64::from(rate) / 100.0;
    let cents = (v * 100.0).round_ties_even();
    Decimal::new(cents as i64, 2)
}

/// Exactly two decimals: `12.50`, `0.00`.
pub fn format(d: Decimal) -> String {
    let mut r = round_cents(d);
    r.rescale(2);
    if r.is_zero() {
        r.set_sign_positive(true);
    }
    r.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn lexical_decimals() {
        for ok in ["12.50", "12", "12.", ".5", "+1.00", "-3.5", "0"] {
            assert!(is_decimal_lexical(ok), "{ok}");
        }
        for bad in ["", ".", "+", "1,50", "1.2.3", "abc", "1e3", " 1.00"] {
            assert!(!is_decimal_lexical(bad), "{bad}");
        }
    }

    #[test]
    fn two_decimals_exactly() {
        assert_eq!(parse_amount("12.50"), Some(d("12.50")));
        assert_eq!(parse_amount("0.00"), Some(d("0")));
        assert_eq!(parse_amount("+1.00"), Some(d("1")));
        assert_eq!(parse_amount("12.5"), None);
        assert_eq!(parse_amount("12.500"), None);
        assert_eq!(parse_amount("12"), None);
        assert_eq!(parse_amount("12."), None);
        assert_eq!(parse_amount(".50"), None);
        assert_eq!(parse_amount("-1.00"), None);
    }

    #[test]
    fn rounding_half_away_from_zero() {
        assert_eq!(round_cents(d("12.345")), d("12.35"));
        assert_eq!(round_cents(d("12.344")), d("12.34"));
        assert_eq!(round_cents(d("12.355")), d("12.36"));
        assert_eq!(round_cents(d("-12.345")), d("-12.35"));
        assert_eq!(round_cents(d("0.005")), d("0.01"));
        assert_eq!(percent(d("24.69"), 50), d("12.35"));
        assert_eq!(percent(d("33.33"), 50), d("16.67"));
        assert_eq!(percent(d("24.69"), 80), d("19.75"));
    }

    #[test]
    fn float_defect_changes_the_half_cent() {
        assert_eq!(percent(d("24.69"), 50), d("12.35"));
        assert_eq!(percent_f64(d("24.69"), 50), d("12.34"));
        // Away from a half cent, floats agree.
        assert_eq!(percent_f64(d("24.69"), 80), d("19.75"));
        assert_eq!(percent_f64(d("100.00"), 80), d("80.00"));
        assert_eq!(percent_f64(d("12.34"), 100), d("12.34"));
    }

    #[test]
    fn formatting() {
        assert_eq!(format(d("12.5")), "12.50");
        assert_eq!(format(d("0")), "0.00");
        assert_eq!(format(d("-0.00")), "0.00");
        assert_eq!(format(d("80")), "80.00");
        assert_eq!(format(d("1234.5678")), "1234.57");
    }
}
