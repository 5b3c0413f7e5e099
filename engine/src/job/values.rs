//! Sizes ("64KiB", "512MiB", "2GiB") and durations ("90s", "10m", "1h").

use std::time::Duration;

/// Parses a byte size: a whole number with an optional unit (B, KiB, MiB, GiB, TiB,
/// or KB, MB, GB, TB as powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a size; write it like \"64KiB\", \"512MiB\" or \"2GiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown size unit {other:?} in {text:?}; use B, KiB, MiB, GiB or TiB")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration: a whole number with a unit (ms, s, m, h, d).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a duration; write it like \"90s\", \"10m\" or \"1h\""))?;
    // Checked: "18446744073709551615m" overflowed (a panic in debug builds, a wrapped,
    // wrong limit in release); found by the job parser's property tests.
    let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"));
    Ok(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" | "min" => secs(60)?,
        "h" => secs(3600)?,
        "d" => secs(86_400)?,
        "" => return Err(format!("{text:?} has no unit; write it like \"90s\", \"10m\" or \"1h\"")),
        other => return Err(format!("unknown duration unit {other:?} in {text:?}; use ms, s, m, h or d")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").unwrap_err().contains("\"parsecs\""));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        // Regression (property tests): overflow is an error, not a panic or a wrapped value.
        assert!(parse_duration("18446744073709551615m").unwrap_err().contains("too long"));
        assert!(parse_duration("307445734561825861h").unwrap_err().contains("too long"));
        assert_eq!(parse_duration("307445734561825860m"), Ok(Duration::from_secs(307_445_734_561_825_860 * 60)));
    }
}
