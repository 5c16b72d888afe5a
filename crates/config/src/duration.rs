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
}
