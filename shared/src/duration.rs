//! Durations as people write them in Dockerfiles: `250ms`, `5s`, `2m`, `1h`,
//! a bare number of seconds (`30`, `1.5`), or combinations like `1m30s`.

use std::time::Duration;

/// Parse a duration; the error says what was wrong in words.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration (use e.g. 250ms, 5s, 2m, 1h)".into());
    }
    if let Some(d) = number(t) {
        return secs(d, s);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: missing unit after the last number"))?;
        if num_len == 0 {
            return Err(format!("{s:?} is not a duration (use e.g. 250ms, 5s, 2m, 1h)"));
        }
        let n = number(&rest[..num_len]).ok_or_else(|| format!("{s:?}: bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "us" | "µs" => 0.000_001,
            u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    secs(total, s)
}

fn number(s: &str) -> Option<f64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') || s.matches('.').count() > 1 {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn secs(v: f64, orig: &str) -> Result<Duration, String> {
    // Ten years is far beyond any wait; refuse what cannot be meant.
    if !(0.0..=315_360_000.0).contains(&v) {
        return Err(format!("{orig:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// For argh's `from_str_fn`.
pub fn arg(s: &str) -> Result<Duration, String> {
    parse(s)
}

/// Check only, for the environment fallback table.
pub fn check(s: &str) -> Result<(), String> {
    parse(s).map(|_| ())
}

/// Short human form: `1.3ms`, `250ms`, `3s`, `1.5s`, `2m`, `1h30m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{}ms", ms.round() as u64)
    } else if d.as_secs() < 60 {
        let s = d.as_secs_f64();
        if (s - s.round()).abs() < 0.05 {
            format!("{}s", s.round() as u64)
        } else {
            format!("{s:.1}s")
        }
    } else {
        let s = d.as_secs();
        let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if sec > 0 {
            out.push_str(&format!("{sec}s"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "s",
            "5x",
            "-1",
            "1..2s",
            "abc",
            "5 s s",
            "1e3",
            "999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn human_form() {
        assert_eq!(human(Duration::from_micros(1300)), "1.3ms");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(3)), "3s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
