//! `--name-template`: how a recording's file is named, from the session id, the UTC start,
//! the node id and a label the caller gave (`POST /offer?label=...`).
//!
//! Checked at start: only the placeholders below, literal text of letters, digits, `-`, `_`
//! and `.`, and `{session}` somewhere (the one thing that makes every name unique: without
//! it two calls could write one file). The extension (`.wav`) is added to what it gives.

use std::fmt;
use std::str::FromStr;

/// The built-in template: `<session>_<UTC start>`, as before the setting existed.
pub const DEFAULT_NAME_TEMPLATE: &str = "{session}_{start}";

/// Longest label kept from the caller, in characters.
pub const MAX_LABEL: usize = 64;

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Session,
    Start,
    Date,
    Node,
    Label,
}

/// What a name is made of, for one call.
pub struct NameFields<'a> {
    pub session: &'a str,
    /// UTC, compact: `20261130T004847Z`.
    pub start: &'a str,
    pub node: Option<&'a str>,
    /// As the caller gave it (decoded from the query string); sanitised here.
    pub label: Option<&'a str>,
}

impl NameTemplate {
    /// The file name (without extension) for one call. A missing node id or label gives `-`.
    pub fn render(&self, f: &NameFields<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Session => out.push_str(f.session),
                Part::Start => out.push_str(f.start),
                Part::Date => out.push_str(&date_of(f.start)),
                Part::Node => out.push_str(f.node.unwrap_or("-")),
                Part::Label => out.push_str(&f.label.map_or_else(|| "-".to_owned(), sanitise)),
            }
        }
        out
    }
}

/// `YYYY-MM-DD` of a compact UTC stamp (`20261130T004847Z`).
fn date_of(start: &str) -> String {
    match (start.get(0..4), start.get(4..6), start.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => "-".to_owned(),
    }
}

/// A caller's label made safe for a file name: letters, digits, `-`, `_` and `.` kept
/// (others become `_`), no leading dot, at most [`MAX_LABEL`] characters; `-` if nothing
/// is left.
pub fn sanitise(label: &str) -> String {
    let kept: String = label
        .chars()
        .take(MAX_LABEL)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let kept = kept.trim_start_matches('.');
    if kept.is_empty() {
        "-".to_owned()
    } else {
        kept.to_owned()
    }
}

impl FromStr for NameTemplate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let (name, tail) = after.split_once('}').ok_or("a '{' without its '}'")?;
                parts.push(match name {
                    "session" => Part::Session,
                    "start" => Part::Start,
                    "date" => Part::Date,
                    "node" => Part::Node,
                    "label" => Part::Label,
                    other => {
                        return Err(format!(
                            "unknown placeholder {{{other}}}: use {{session}}, {{start}}, {{date}}, {{node}}, {{label}}"
                        ))
                    }
                });
                rest = tail;
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let text = &rest[..end];
                if let Some(bad) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
                    return Err(format!(
                        "{bad:?} is not allowed in a file name: use letters, digits, '-', '_' and '.'"
                    ));
                }
                parts.push(Part::Text(text.to_owned()));
                rest = &rest[end..];
            }
        }
        if !parts.contains(&Part::Session) {
            return Err("must contain {session}: without it two calls could get one file".to_owned());
        }
        if matches!(parts.first(), Some(Part::Text(t)) if t.starts_with('.')) {
            return Err("must not begin with '.' (a hidden file)".to_owned());
        }
        Ok(NameTemplate { parts, text: s.to_owned() })
    }
}

impl fmt::Display for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Default for NameTemplate {
    fn default() -> Self {
        DEFAULT_NAME_TEMPLATE.parse().expect("the default template is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(label: Option<&'a str>) -> NameFields<'a> {
        NameFields { session: "0b1c", start: "20261130T004847Z", node: Some("eu-1"), label }
    }

    #[test]
    fn the_default_is_the_name_of_before() {
        assert_eq!(NameTemplate::default().render(&fields(None)), "0b1c_20261130T004847Z");
    }

    #[test]
    fn every_placeholder_renders() {
        let t: NameTemplate = "{date}.{node}.{label}.{session}.{start}".parse().unwrap();
        assert_eq!(t.render(&fields(Some("sales"))), "2026-11-30.eu-1.sales.0b1c.20261130T004847Z");
        let none = NameFields { node: None, ..fields(None) };
        assert_eq!(t.render(&none), "2026-11-30.-.-.0b1c.20261130T004847Z");
    }

    #[test]
    fn labels_cannot_leave_the_folder_or_hide() {
        assert_eq!(sanitise("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitise("a/b\\c\0d e"), "a_b_c_d_e");
        assert_eq!(sanitise("..."), "-");
        assert_eq!(sanitise(""), "-");
        assert_eq!(sanitise("ünïcode"), "_n_code");
        assert_eq!(sanitise(&"x".repeat(100)).len(), MAX_LABEL);
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        for (bad, why) in [
            ("{start}", "{session}"),
            ("{session}/{date}", "'/'"),
            ("{session}{nope}", "unknown placeholder {nope}"),
            ("{session", "without its '}'"),
            (".{session}", "hidden"),
            ("{session} x", "' '"),
        ] {
            let e = bad.parse::<NameTemplate>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
