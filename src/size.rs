//! Byte sizes as people write and read them (`4G`, `512M`, `50M`): the one
//! parser (config, flags) and the one rendering. Below every stage of the
//! pipeline: it imports nothing of warden.
//!
//! Suffixes are binary, as the kernel's cgroup files, systemd
//! (`MemoryMax=4G`) and docker (`--memory 4g`) read them: `K` = 1024,
//! `M` = 1024², `G` = 1024³, `T` = 1024⁴; `KiB`/`KB`/`Ki` spell the same.
//! A bare number is bytes. Fractions are allowed (`1.5G`).

/// The largest size accepted: 1 PiB. Larger ones are typos.
pub const MAX: u64 = 1 << 50;

/// A size above zero and at most [`MAX`]. The error is a sentence fragment
/// naming the input, suitable for prefixing with a key or flag name.
pub fn parse(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad =
        || format!("invalid size {s:?}: expected a number and a unit like \"512M\" or \"4G\"");
    if number.is_empty() {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KI" | "KIB" => 10,
        "M" | "MB" | "MI" | "MIB" => 20,
        "G" | "GB" | "GI" | "GIB" => 30,
        "T" | "TB" | "TI" | "TIB" => 40,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if bytes.is_nan() || bytes < 1.0 {
        return Err(format!("size {s:?} must be greater than zero"));
    }
    if bytes > MAX as f64 {
        return Err(format!("size {s:?} is larger than 1P"));
    }
    // In range (checked above): the cast neither saturates nor wraps.
    Ok(bytes.round() as u64)
}

/// A size for reading: one decimal in the largest binary unit that keeps it
/// at least 1 (`4.0G`, `512.0M`, `812B`).
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1u64 << shift {
            return format!("{:.1}{unit}", bytes as f64 / (1u64 << shift) as f64);
        }
    }
    format!("{bytes}B")
}

/// A configured size, as written back: the largest unit that writes it
/// whole (`4G`, `1536M`), else bytes.
pub fn exact(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1u64 << shift && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_suffixes_and_fractions() {
        assert_eq!(parse("4G"), Ok(4 << 30));
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("1.5G"), Ok(3 << 29));
        assert_eq!(parse("20MiB"), Ok(20 << 20));
        assert_eq!(parse("64k"), Ok(64 << 10));
        assert_eq!(parse("4096"), Ok(4096));
    }

    #[test]
    fn nonsense_is_an_error_naming_it() {
        for bad in ["", "G", "4X", "-1G", "0", "0M", "4 G B", "2P"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn rendered_for_reading_and_for_config() {
        assert_eq!(human(4 << 30), "4.0G");
        assert_eq!(human(1536 << 20), "1.5G");
        assert_eq!(human(812), "812B");
        assert_eq!(exact(4 << 30), "4G");
        assert_eq!(exact(1536 << 20), "1536M");
        assert_eq!(exact(1000), "1000");
        for s in ["4G", "1536M", "20M", "64K"] {
            assert_eq!(exact(parse(s).unwrap()), s);
        }
    }
}
