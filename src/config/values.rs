//! Parsers for the values that need more than `FromStr`, shared by the flags (through clap)
//! and the config file, so both accept exactly the same values; and the conversions of the
//! settings whose `Config` field has another type than the flag.

use std::num::NonZeroUsize;

use super::PTIMES_MS;

/// `--ptime`: one of [`PTIMES_MS`].
pub fn parse_ptime(s: &str) -> Result<u64, String> {
    check_ptime(s.parse().map_err(|e| format!("{e}"))?)
}

/// A packet time in milliseconds Opus and browsers agree on.
pub fn check_ptime(ms: u64) -> Result<u64, String> {
    if PTIMES_MS.contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("must be one of {PTIMES_MS:?}"))
    }
}

/// The `Config` value of `--ptime`, which [`parse_ptime`] or [`check_ptime`] let through.
pub fn to_ptime(ms: u64) -> tapedeck_core::media::Ptime {
    tapedeck_core::media::Ptime::from_millis(ms).expect("checked by values::check_ptime")
}

/// The `Config` value of `--recorder-threads`: 0 is one per CPU core.
pub fn threads_or_cores(threads: usize) -> NonZeroUsize {
    NonZeroUsize::new(threads).unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
}

/// `--log-level`: off, error, warn, info, debug or trace.
pub fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse().map_err(|_| "must be one of off, error, warn, info, debug, trace".to_owned())
}

/// A CORS origin as browsers send it in `Origin:` (`scheme://host[:port]`, lowercase, no
/// default port, no path), or `*` for any origin.
///
/// The scheme and host are lowercased and a default port (80 for http, 443 for https) is
/// dropped, so the stored string compares equal to the header a browser sends.
pub fn parse_origin(s: &str) -> Result<String, String> {
    const SHAPE: &str = "must be scheme://host[:port] without a path, or *";
    if s == "*" {
        return Ok(s.to_owned());
    }
    let (scheme, rest) = s.split_once("://").ok_or(SHAPE)?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("{SHAPE}: bad scheme {scheme:?}"));
    }
    if let Some(i) = rest.find(['/', '?', '#']) {
        return Err(format!("{SHAPE}: remove {:?}", &rest[i..]));
    }
    if rest.contains('@') {
        return Err(format!("{SHAPE}: no user name"));
    }
    let (host, port) = split_port(rest).ok_or(SHAPE)?;
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    };
    if !host_ok {
        return Err(format!("{SHAPE}: bad host {host:?}"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Ok(match port {
        Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Splits `host[:port]` (host may be a bracketed IPv6 address); `None` if the port is bad.
fn split_port(s: &str) -> Option<(&str, Option<u16>)> {
    let colon = match s.rfind(':') {
        Some(i) if !s[i..].contains(']') => i,
        _ => return Some((s, None)),
    };
    let port = &s[colon + 1..];
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&s[..colon], Some(port.parse().ok()?)))
}

/// `--node-id`: 1 to 64 ASCII letters, digits, '-', '_' or '.', not "." or ".." (it is a
/// path segment of every session URL).
pub fn parse_node_id(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s != "."
        && s != "..";
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be 1 to 64 letters, digits, '-', '_' or '.'".to_owned())
    }
}

/// `--public-url`: `http(s)://host[:port][/path]`, without a query or fragment; stored
/// without a trailing slash, so session paths append to it.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    const SHAPE: &str = "must be http://host[:port][/path] or https://...";
    let (scheme, rest) = s.split_once("://").ok_or(SHAPE)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("{SHAPE}: the scheme is {scheme:?}"));
    }
    if let Some(i) = rest.find(['?', '#']) {
        return Err(format!("{SHAPE}: remove {:?}", &rest[i..]));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let origin = parse_origin(&format!("{scheme}://{authority}"))?;
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("{SHAPE}: the path has spaces or characters outside ASCII"));
    }
    Ok(format!("{origin}{}", path.trim_end_matches('/')))
}

/// `--upload-endpoint`: an `http://` or `https://` URL of an S3-compatible server
/// (`scheme://host[:port][/path]`), stored without a trailing slash.
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    parse_public_url(s).map_err(|e| e.replace("must be", "must be an S3 endpoint,"))
}

/// `--upload-region`: 1 to 64 ASCII letters, digits, '-' or '_' (`us-east-1`, `eu-central-1`).
pub fn parse_region(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be 1 to 64 letters, digits, '-' or '_' (like us-east-1)".to_owned())
    }
}

/// `--webhook`: an `http://` or `https://` URL without spaces or a fragment.
pub fn parse_webhook_url(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => return Err("must be an http:// or https:// URL".to_owned()),
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) || s.contains('#') {
        return Err("must not have spaces or a #fragment".to_owned());
    }
    Ok(s.to_owned())
}

/// A byte count: a plain integer, or one with a `KiB`, `MiB` or `GiB` suffix; not zero.
pub fn parse_bytes(s: &str) -> Result<std::num::NonZeroU64, String> {
    const UNITS: [(&str, u64); 3] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];
    let (number, unit) =
        UNITS.iter().find_map(|&(suffix, unit)| s.strip_suffix(suffix).map(|n| (n, unit))).unwrap_or((s, 1));
    let n: u64 = number.trim().parse().map_err(|_| "must be a number of bytes, like 52428800 or 50MiB".to_owned())?;
    let bytes = n.checked_mul(unit).ok_or("too large")?;
    std::num::NonZeroU64::new(bytes).ok_or_else(|| "must not be zero".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_stored_as_browsers_send_them() {
        assert_eq!(parse_origin("https://app.example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("HTTPS://App.Example.com:443").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        assert_eq!(parse_origin("http://[::1]:8080").unwrap(), "http://[::1]:8080");
        assert_eq!(parse_origin("capacitor://localhost").unwrap(), "capacitor://localhost");
        assert_eq!(parse_origin("*").unwrap(), "*");
    }

    #[test]
    fn things_that_are_not_origins_are_refused() {
        for bad in [
            "",
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://",
            "https://exa mple.com",
            "https://example.com:",
            "https://example.com:99999",
            "https://[nope]",
            "1http://example.com",
            "**",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?} was accepted");
        }
        let e = parse_origin("https://example.com/app").unwrap_err();
        assert!(e.contains("\"/app\""), "{e}");
    }

    #[test]
    fn node_ids_are_path_segments() {
        for good in ["a", "node-1", "eu_west.3", &"x".repeat(64)] {
            assert_eq!(parse_node_id(good).as_deref(), Ok(good));
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "%2F", &"x".repeat(65)] {
            assert!(parse_node_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn public_urls_are_bases_for_session_paths() {
        assert_eq!(parse_public_url("https://calls.example.com/").unwrap(), "https://calls.example.com");
        assert_eq!(parse_public_url("HTTP://LB:8080/tapedeck/").unwrap(), "http://lb:8080/tapedeck");
        assert_eq!(parse_public_url("http://[::1]:80").unwrap(), "http://[::1]");
        for bad in ["calls.example.com", "ftp://x", "https://x/?a=1", "https://x#f", "https://x/a b", "https://"] {
            assert!(parse_public_url(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("52428800").unwrap().get(), 50 << 20);
        assert_eq!(parse_bytes("50MiB").unwrap().get(), 50 << 20);
        assert_eq!(parse_bytes("4KiB").unwrap().get(), 4096);
        assert_eq!(parse_bytes("1GiB").unwrap().get(), 1 << 30);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("50MB").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999GiB").is_err());
    }

    #[test]
    fn ptime_and_level() {
        assert_eq!(parse_ptime("20"), Ok(20));
        assert!(parse_ptime("15").is_err());
        assert_eq!(parse_level("debug"), Ok(log::LevelFilter::Debug));
        assert!(parse_level("loud").is_err());
    }
}
