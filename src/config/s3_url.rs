//! `--upload s3://BUCKET[/PREFIX]`: where finished recordings are uploaded, and the object key
//! of each (the prefix, `/`, the file name).

use std::fmt;

/// A bucket and a key prefix (without leading or trailing `/`; empty for the bucket's top).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// `s3://BUCKET` or `s3://BUCKET/PREFIX`: a bucket name as S3 takes it (3 to 63
    /// lowercase letters, digits, '.' or '-', beginning and ending with a letter or a digit)
    /// and a prefix of printable ASCII without spaces, '?', '#' or empty segments (`a//b`).
    pub fn parse(s: &str) -> Result<S3Url, String> {
        let rest = s.strip_prefix("s3://").ok_or("must be s3://BUCKET[/PREFIX]")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("must be s3://BUCKET[/PREFIX]: the bucket name is missing".to_owned());
        }
        let edges = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && edges(bucket.bytes().next())
            && edges(bucket.bytes().last());
        if !bucket_ok {
            return Err(format!(
                "bucket name {bucket:?}: must be 3 to 63 lowercase letters, digits, '.' or '-', \
                 beginning and ending with a letter or a digit"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.bytes().any(|b| !b.is_ascii_graphic() || b == b'?' || b == b'#') {
            return Err(format!("prefix {prefix:?}: must be printable ASCII without spaces, '?' or '#'"));
        }
        if !prefix.is_empty() && prefix.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(format!("prefix {prefix:?}: has an empty, '.' or '..' segment"));
        }
        Ok(S3Url { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    /// The object key of a file: `PREFIX/NAME`, or `NAME` without a prefix.
    pub fn key(&self, file_name: &str) -> String {
        if self.prefix.is_empty() {
            file_name.to_owned()
        } else {
            format!("{}/{file_name}", self.prefix)
        }
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_prefixes() {
        let u = S3Url::parse("s3://recordings/tapedeck/eu").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("recordings", "tapedeck/eu"));
        assert_eq!(u.key("abc_20261130T004847Z.wav"), "tapedeck/eu/abc_20261130T004847Z.wav");
        assert_eq!(u.to_string(), "s3://recordings/tapedeck/eu");
        let top = S3Url::parse("s3://my.bucket-1/").unwrap();
        assert_eq!((top.prefix.as_str(), top.key("a.wav")), ("", "a.wav".to_owned()));
        assert_eq!(top.to_string(), "s3://my.bucket-1");
        assert_eq!(S3Url::parse("s3://b12/p/").unwrap().key("x.wav"), "p/x.wav", "a trailing / is dropped");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, says) in [
            ("https://bucket/prefix", "must be s3://"),
            ("s3://", "bucket name is missing"),
            ("s3:///prefix", "bucket name is missing"),
            ("s3://ab", "3 to 63"),
            ("s3://My_Bucket", "lowercase"),
            ("s3://-bucket", "beginning and ending"),
            ("s3://bucket/a b", "without spaces"),
            ("s3://bucket/a?x=1", "'?'"),
            ("s3://bucket/a//b", "empty"),
            ("s3://bucket/../b", "'..'"),
        ] {
            let e = S3Url::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
