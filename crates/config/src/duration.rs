//! Durations written as text in manifests: `30s`, `10m`, `24h`, `7d`, `250ms`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration read from `"10m"`-style text, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

/// Parses `250ms`, `30s`, `10m`, `24h`, `7d`, or a whole number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if let Some(fraction) = unit.strip_prefix('.') {
        return Err(fractional(text, number, fraction));
    }
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 30s, 10m, 24h or 7d"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` has unknown unit `{unit}`; use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(seconds))
}

/// Why `1.5s` is refused, with the whole-number spelling of the same span when there is one.
fn fractional(text: &str, whole: &str, rest: &str) -> String {
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (fraction, unit) = rest.split_at(digits);
    let smaller = match unit {
        "" | "s" => Some(("ms", 1000)),
        "m" => Some(("s", 60)),
        "h" => Some(("m", 60)),
        "d" => Some(("h", 24)),
        _ => None,
    };
    let exact = smaller.and_then(|(name, factor)| {
        let value: f64 = format!("{whole}.{fraction}").parse().ok()?;
        let scaled = value * f64::from(factor);
        (scaled.fract() == 0.0 && scaled < 1e15).then(|| format!("{scaled}{name}"))
    });
    match exact {
        Some(spelled) => format!("`{text}`: fractions are not allowed; use {spelled}"),
        None => format!("`{text}`: fractions are not allowed; use a whole number of a smaller unit (ms, s, m, h)"),
    }
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = DurationText;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration like \"30s\", \"10m\", \"24h\" or a whole number of seconds")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationText, E> {
        Ok(DurationText(Duration::from_secs(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DurationText, E> {
        let text = v.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
        Err(E::custom(fractional(&text, whole, fraction)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationText, E> {
        parse(v).map(DurationText).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("15"), Ok(Duration::from_secs(15)));
        assert!(parse("5 weeks").is_err());
        assert!(parse("h").is_err());
    }

    #[test]
    fn fractions_name_the_whole_spelling() {
        assert_eq!(parse("1.5s").unwrap_err(), "`1.5s`: fractions are not allowed; use 1500ms");
        assert_eq!(parse("0.5m").unwrap_err(), "`0.5m`: fractions are not allowed; use 30s");
        assert_eq!(parse("2.5").unwrap_err(), "`2.5`: fractions are not allowed; use 2500ms");
        assert!(parse("1.25h").unwrap_err().ends_with("use 75m"));
        assert!(parse("0.0001ms").unwrap_err().contains("smaller unit"));
        let err = serde_json::from_str::<DurationText>("1.5").unwrap_err().to_string();
        assert!(err.contains("fractions are not allowed; use 1500ms"), "{err}");
    }
}
