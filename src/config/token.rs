//! The bearer token clients present in `Authorization: Bearer <token>`.

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// A bearer token. `Debug` and `Display` print `<redacted>`, so a token never reaches a log
/// line or an error message; compare with [`Token::matches`], which takes the same time
/// wherever the first difference is.
#[derive(Clone)]
pub struct Token(String);

/// A token that cannot be used. The messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token given by {0} is empty")]
    Empty(String),
    #[error("the token given by {0} must be printable ASCII without spaces (it goes in an HTTP header)")]
    Invalid(String),
    #[error("cannot read the token file {0}: {1}")]
    Read(PathBuf, std::io::Error),
}

impl Token {
    /// A checked token: not empty, printable ASCII without spaces. `from` names where it came
    /// from, for the error message.
    pub fn new(token: String, from: &str) -> Result<Token, TokenError> {
        Token(token).check(from)
    }

    /// Reads a token file (as systemd's `LoadCredential=` provides): the whole file, one
    /// trailing newline (`\n` or `\r\n`) removed.
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokenError::Read(path.to_owned(), e))?;
        let token = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        Token::new(token.to_owned(), &format!("the file {}", path.display()))
    }

    /// Whether `presented` is this token, in time independent of where they differ (only a
    /// difference in length returns early, which tells an attacker the length at most).
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The token itself, for the rare code that must send it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// clap's value parser: takes the flag's value as it is, so that a refused token never
    /// appears in clap's "invalid value '...'" message; [`Token::check`] follows.
    pub(super) fn unchecked(s: &str) -> Result<Token, Infallible> {
        Ok(Token::raw(s.to_owned()))
    }

    /// A token as given, before [`Token::check`].
    pub(super) fn raw(token: String) -> Token {
        Token(token)
    }

    /// Refuses an empty token or one that cannot travel in an HTTP header.
    pub(super) fn check(self, from: &str) -> Result<Token, TokenError> {
        if self.0.is_empty() {
            return Err(TokenError::Empty(from.to_owned()));
        }
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid(from.to_owned()));
        }
        Ok(self)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_token() {
        let t = Token::new("s3cret-Token_1".into(), "test").unwrap();
        assert!(t.matches("s3cret-Token_1"));
        assert!(!t.matches("s3cret-Token_2"));
        assert!(!t.matches("s3cret-Token_1 "));
        assert!(!t.matches("s3cret"));
        assert!(!t.matches(""));
        assert_eq!(t.expose(), "s3cret-Token_1");
    }

    #[test]
    fn never_printed() {
        let t = Token::new("s3cret".into(), "test").unwrap();
        assert_eq!(format!("{t}"), "<redacted>");
        assert_eq!(format!("{t:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(t.clone())), "Some(<redacted>)");
    }

    #[test]
    fn unusable_tokens_are_refused_without_showing_them() {
        assert!(matches!(Token::new(String::new(), "--token"), Err(TokenError::Empty(_))));
        let e = Token::new("two words".into(), "--token").unwrap_err();
        assert!(matches!(e, TokenError::Invalid(_)));
        let message = e.to_string();
        assert!(message.contains("--token") && !message.contains("two words"), "{message}");
        assert!(Token::new("tab\there".into(), "x").is_err());
        assert!(Token::new("caf\u{e9}".into(), "x").is_err());
    }

    #[test]
    fn token_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        for (content, expected) in
            [("abc\n", Some("abc")), ("abc\r\n", Some("abc")), ("abc", Some("abc")), ("abc\n\n", None)]
        {
            std::fs::write(&path, content).unwrap();
            let token = Token::read(&path).ok();
            assert_eq!(token.as_ref().map(Token::expose), expected, "{content:?}");
        }
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(Token::read(&path), Err(TokenError::Empty(_))));
        let missing = Token::read(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("missing"), "{missing}");
    }
}
