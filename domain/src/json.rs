//! JSON values as pgqueue stores them: exactly as sent, and only what the database can keep.
//!
//! Payloads and results are stored in PostgreSQL's `jsonb`, which keeps numbers as `numeric`
//! (every digit) but refuses two things JSON allows: the character U+0000 in a string or key,
//! and numbers beyond `numeric`'s range (131,072 digits before the decimal point, 16,383
//! after). Both are refused here, at the edge, so that both adapters accept and refuse alike
//! and nothing that was accepted can fail later, in a statement shared with other callers.
//!
//! Numbers are kept as their text (serde_json's `arbitrary_precision`), so
//! `123456789012345678901234567890` is never rounded through `f64`. The expanded size is
//! bounded too: PostgreSQL prints `1e400` as 401 digits, so a small body of huge exponents
//! could otherwise become a multi-gigabyte row.

use crate::error::{Error, Result};
use serde_json::Value;

/// Most digits `numeric` keeps before the decimal point.
pub const MAX_INTEGER_DIGITS: u64 = 131_072;
/// Most digits `numeric` keeps after the decimal point.
pub const MAX_FRACTION_DIGITS: u64 = 16_383;
/// Largest size a stored value may take once its numbers are written out in full.
pub const MAX_EXPANDED_BYTES: u64 = 16 * 1024 * 1024;

/// Deserialises an optional integer field, accepting integral numbers in any JSON spelling
/// (`689`, `689.0`, `6.89e2`): JSON Schema counts them all as integers, and with exact
/// numbers serde no longer converts them for us. `null` is absent.
pub fn optional_integer<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("invalid number {n}: expected an integer"))),
        other => Err(D::Error::custom(format!(
            "invalid type: {}, expected an integer",
            match other {
                Value::Bool(_) => "boolean",
                Value::String(_) => "string",
                Value::Array(_) => "sequence",
                _ => "map",
            }
        ))),
    }
}

/// Checks that `value`, sent as the body field `field`, can be stored and read back exactly.
pub fn check_storable(field: &'static str, value: &Value) -> Result<()> {
    let mut expanded = 0u64;
    walk(field, value, &mut expanded)?;
    if expanded > MAX_EXPANDED_BYTES {
        return Err(Error::Unstorable {
            field,
            reason: format!(
                "its numbers written out in full take more than {MAX_EXPANDED_BYTES} bytes"
            ),
        });
    }
    Ok(())
}

fn walk(field: &'static str, value: &Value, expanded: &mut u64) -> Result<()> {
    match value {
        Value::String(s) => string(field, s, expanded),
        Value::Number(n) => {
            *expanded += number_width(field, &n.to_string())?;
            Ok(())
        }
        Value::Array(items) => {
            *expanded += 2;
            items.iter().try_for_each(|v| walk(field, v, expanded))
        }
        Value::Object(map) => {
            *expanded += 2;
            for (k, v) in map {
                string(field, k, expanded)?;
                walk(field, v, expanded)?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) => {
            *expanded += 5;
            Ok(())
        }
    }
}

fn string(field: &'static str, s: &str, expanded: &mut u64) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::ContainsNul(field));
    }
    *expanded += s.len() as u64 + 2;
    Ok(())
}

/// How many characters PostgreSQL prints for the JSON number `text`, or why it cannot
/// store it. JSON numbers are `-?digits(.digits)?([eE][+-]?digits)?`.
fn number_width(field: &'static str, text: &str) -> Result<u64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()),
        None => (unsigned, Some(0)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let out_of_range = || Error::Unstorable {
        field,
        reason: format!(
            "the number {} is outside PostgreSQL's numeric range",
            short(text)
        ),
    };
    // An exponent too large for i64 is far outside numeric's range either way.
    let exponent = exponent.ok_or_else(out_of_range)?;
    let int = int.trim_start_matches('0');
    let digits = int.len() as i64 + frac.len() as i64;
    let significant = format!("{int}{frac}");
    let leading_zeros = (significant.len() - significant.trim_start_matches('0').len()) as i64;
    if leading_zeros == digits {
        return Ok(1); // zero, whatever its exponent
    }
    // Position of the decimal point relative to the first digit of `int frac`.
    let point = (int.len() as i64).saturating_add(exponent);
    let integer_digits = point.max(0);
    let trailing_zeros = (significant.len() - significant.trim_end_matches('0').len()) as i64;
    let fraction_digits = (digits - trailing_zeros - point).max(0);
    if integer_digits as u64 > MAX_INTEGER_DIGITS || fraction_digits as u64 > MAX_FRACTION_DIGITS {
        return Err(out_of_range());
    }
    Ok((integer_digits + fraction_digits + 2) as u64)
}

/// A number's text, shortened for an error message.
fn short(text: &str) -> String {
    if text.len() <= 40 {
        text.to_string()
    } else {
        format!("{}…", &text[..40])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn nul_is_refused_in_strings_and_keys_anywhere() {
        for body in [
            r#""x\u0000y""#,
            r#"{"a":"x\u0000"}"#,
            r#"{"a\u0000":1}"#,
            r#"[1,[{"b":["\u0000"]}]]"#,
        ] {
            let err = check_storable("payload", &parse(body)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "payload contains \\u0000, which cannot be stored",
                "{body}"
            );
        }
        assert!(check_storable("result", &parse(r#"{"a":"x\u0001y","b":"\\u0000"}"#)).is_ok());
    }

    #[test]
    fn numbers_keep_every_digit() {
        for text in [
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
            "-8.822190132575686e-69",
            "1.7976931348623157e308",
        ] {
            let v = parse(text);
            // serde_json keeps the digits (it spells a positive exponent `e+`).
            assert_eq!(v.to_string().replace("e+", "e"), text);
            assert!(check_storable("payload", &v).is_ok());
        }
    }

    #[test]
    fn numbers_follow_numerics_range() {
        let ok = |s: &str| check_storable("payload", &parse(s)).is_ok();
        assert!(ok("1e400"));
        assert!(ok("1e131071"));
        assert!(!ok("1e131072"));
        assert!(ok("1e-16383"));
        assert!(!ok("1e-16384"));
        assert!(ok("0e999999999"));
        assert!(ok("1.5e-16382"));
        assert!(!ok("1e99999999999999999999"));
        let err = check_storable("result", &parse("[1e200000]")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid result: the number 1e+200000 is outside")
        );
        assert_eq!(number_width("p", "100").unwrap(), 5);
        assert_eq!(number_width("p", "1.50e1").unwrap(), 4);
    }

    #[test]
    fn integers_may_be_spelt_as_integral_numbers() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "optional_integer")]
            n: Option<i64>,
        }
        let n = |s: &str| serde_json::from_str::<T>(s).map(|t| t.n);
        assert_eq!(n(r#"{"n":689}"#).unwrap(), Some(689));
        assert_eq!(n(r#"{"n":689.0}"#).unwrap(), Some(689));
        assert_eq!(n(r#"{"n":6.89e2}"#).unwrap(), Some(689));
        assert_eq!(n(r#"{"n":null}"#).unwrap(), None);
        assert_eq!(n(r#"{}"#).unwrap(), None);
        assert!(n(r#"{"n":1.5}"#).is_err());
        assert!(n(r#"{"n":"1"}"#).is_err());
        assert!(n(r#"{"n":1e30}"#).is_err());
    }

    #[test]
    fn the_expanded_size_is_bounded() {
        let many = format!("[{}]", vec!["1e100000"; 200].join(","));
        let err = check_storable("payload", &parse(&many)).unwrap_err();
        assert!(err.to_string().contains("written out in full"), "{err}");
    }
}
