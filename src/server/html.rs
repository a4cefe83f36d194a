//! Small helpers for the status page: HTML escaping and how times, sizes and numbers read.

use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Escapes text for HTML content and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A value usable in an `id` (and a CSS selector): other characters become `_`.
pub fn id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// "12 s ago", "5 min ago", "3 h ago", "4 d ago"; "in 2 h" for the future.
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let span = match n {
        0..60 => format!("{n} s"),
        60..3_600 => format!("{} min", n / 60),
        3_600..172_800 => format!("{} h", n / 3_600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// An absolute time for tooltips: `2026-03-10 10:00 UTC`.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// "48.2 MB", "912 kB", "17 B" (decimal units).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// A duration in ms as people read it: "182 ms", "2.4 s".
pub fn ms(v: f64) -> String {
    let tenths = (v / 100.0).round();
    if v < 1000.0 {
        format!("{v:.0} ms")
    } else if tenths % 10.0 == 0.0 {
        format!("{:.0} s", tenths / 10.0)
    } else {
        format!("{:.1} s", tenths / 10.0)
    }
}

/// A percentage with up to three decimals and no trailing zeros: "99.95 %".
pub fn pct(v: f64) -> String {
    let t = format!("{v:.3}");
    format!("{} %", t.trim_end_matches('0').trim_end_matches('.'))
}

/// The first 12 characters of a commit.
pub fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// Appends formatted text (writing to a `String` cannot fail).
pub fn put(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("prod-backend"), "prod-backend");
        assert_eq!(id("a b\"<c>"), "a_b__c_");
    }

    #[test]
    fn reads_times_sizes_and_numbers() {
        let now: DateTime<Utc> = "2026-03-10T10:00:00Z".parse().unwrap();
        let at = |s: i64| now - chrono::Duration::seconds(s);
        assert_eq!(ago(at(12), now), "12 s ago");
        assert_eq!(ago(at(300), now), "5 min ago");
        assert_eq!(ago(at(3 * 3600), now), "3 h ago");
        assert_eq!(ago(at(5 * 86_400), now), "5 d ago");
        assert_eq!(ago(at(-7200), now), "in 2 h");
        assert_eq!(size(17), "17 B");
        assert_eq!(size(48_213_000), "48 MB");
        assert_eq!(size(4_821_300), "4.8 MB");
        assert_eq!(ms(182.4), "182 ms");
        assert_eq!(ms(2400.0), "2.4 s");
        assert_eq!(ms(2000.0), "2 s");
        assert_eq!(pct(99.95), "99.95 %");
        assert_eq!(pct(100.0), "100 %");
        assert_eq!(short("4f2c9a1e8b7d6c5a4f3e"), "4f2c9a1e8b7d");
        assert_eq!(short("abc"), "abc");
    }
}
