//! One upload to S3-compatible storage: requests signed by rusty-s3 (presigned URLs, no
//! I/O of its own), sent with the blocking ureq. A file up to [`PART_SIZE`] goes in one
//! `PUT` with `Content-MD5`, and the returned ETag must be the MD5's hex; a larger one goes
//! in parts of [`PART_SIZE`], each with its `Content-MD5` and ETag checked, and the ETag of
//! the completed object must be MD5(the parts' MD5s)-N ([`multipart_etag`]).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::Sha256;

/// Size of every part of a multipart upload but the last; files up to this size go in one PUT.
pub const PART_SIZE: usize = 8 << 20;
/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);
/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request (a part of 8 MiB included) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where uploads go, and with which credentials.
pub struct Client {
    bucket: Bucket,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
}

/// A confirmed upload: the object's key and the file's size and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub bytes: u64,
    pub sha256: String,
    pub parts: usize,
}

/// Why an upload did not go through; the file is kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read the file: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Http(Box<ureq::Error>),
    /// The server answered with an error status; `code` is S3's error code (`NoSuchBucket`).
    #[error("{status} {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Status { status: u16, code: String, message: Option<String> },
    #[error("checksum mismatch: the server's ETag is {got}, the data's MD5 gives {expected}")]
    Checksum { expected: String, got: String },
    #[error("unexpected answer: {0}")]
    Answer(String),
}

impl From<ureq::Error> for UploadError {
    fn from(e: ureq::Error) -> Self {
        UploadError::Http(Box::new(e))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("bucket", &self.bucket.base_url().as_str()).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `bucket` at `endpoint` (path-style: ENDPOINT/BUCKET/KEY), or at AWS S3
    /// of `region` without one (virtual-hosted style, as AWS asks); without credentials the
    /// requests are not signed.
    pub fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        credentials: Option<(String, String)>,
    ) -> Result<Client, String> {
        let (url, style) = match endpoint {
            Some(e) => (e.to_owned(), UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let url = url.parse().map_err(|e| format!("endpoint {url}: {e}"))?;
        let bucket = Bucket::new(url, style, bucket.to_owned(), region.to_owned())
            .map_err(|e| format!("bucket {bucket} at {}: {e}", endpoint.unwrap_or("AWS")))?;
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client { bucket, credentials: credentials.map(|(id, secret)| Credentials::new(id, secret)), agent })
    }

    /// Uploads the file at `path` as `key`, confirmed by its checksums.
    pub fn upload(&self, path: &Path, key: &str) -> Result<Uploaded, UploadError> {
        let mut file = std::fs::File::open(path).map_err(UploadError::Read)?;
        let mut first = read_part(&mut file)?;
        if first.len() < PART_SIZE {
            return self.put(key, first);
        }
        let mut next = read_part(&mut file)?;
        if next.is_empty() {
            return self.put(key, first); // exactly one part's size
        }
        let creds = self.credentials.as_ref();
        let create = self.bucket.create_multipart_upload(creds, key);
        let mut answer = self.agent.post(create.sign(SIGNED_FOR).as_str()).send_empty()?;
        let body = answer_body(&mut answer)?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
            .map_err(|e| UploadError::Answer(format!("CreateMultipartUpload: {e}")))?;
        let upload_id = created.upload_id();
        let result = self.parts(key, upload_id, &mut file, &mut first, &mut next);
        if result.is_err() {
            // Best effort: parts of an upload never completed are kept (and billed) otherwise.
            let abort = self.bucket.abort_multipart_upload(creds, key, upload_id);
            let _ = self.agent.delete(abort.sign(SIGNED_FOR).as_str()).call();
        }
        result
    }

    /// The parts of a multipart upload (the first two already read), and its completion.
    fn parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &mut std::fs::File,
        first: &mut Vec<u8>,
        next: &mut Vec<u8>,
    ) -> Result<Uploaded, UploadError> {
        let creds = self.credentials.as_ref();
        let mut sha = Sha256::new();
        let mut md5s = Vec::new();
        let mut etags = Vec::new();
        let mut bytes = 0u64;
        let mut part = std::mem::take(first);
        loop {
            let number = u16::try_from(md5s.len() + 1).map_err(|_| UploadError::Answer("over 65535 parts".into()))?;
            sha.update(&part);
            bytes += part.len() as u64;
            let md5: [u8; 16] = Md5::digest(&part).into();
            let mut action = self.bucket.upload_part(creds, key, number, upload_id);
            let content_md5 = base64::engine::general_purpose::STANDARD.encode(md5);
            action.headers_mut().insert("content-md5", content_md5.clone());
            let mut answer =
                self.agent.put(action.sign(SIGNED_FOR).as_str()).header("content-md5", &content_md5).send(&part[..])?;
            let etag = checked_etag(&mut answer, &hex(&md5))?;
            md5s.push(md5);
            etags.push(etag);
            part = std::mem::take(next);
            if part.is_empty() {
                break;
            }
            *next = read_part(file)?;
        }
        let complete = self.bucket.complete_multipart_upload(creds, key, upload_id, etags.iter().map(String::as_str));
        let url = complete.sign(SIGNED_FOR);
        let mut answer = self.agent.post(url.as_str()).send(complete.body().as_bytes())?;
        let body = answer_body(&mut answer)?;
        let got = completed_etag(&body)?;
        let expected = multipart_etag(&md5s);
        if got != expected {
            return Err(UploadError::Checksum { expected, got: got.to_owned() });
        }
        Ok(Uploaded { bytes, sha256: hex(&sha.finalize()), parts: md5s.len() })
    }

    /// One PUT of the whole file.
    fn put(&self, key: &str, data: Vec<u8>) -> Result<Uploaded, UploadError> {
        let md5 = Md5::digest(&data);
        let content_md5 = base64::engine::general_purpose::STANDARD.encode(md5);
        let mut action = self.bucket.put_object(self.credentials.as_ref(), key);
        action.headers_mut().insert("content-md5", content_md5.clone());
        let url = action.sign(SIGNED_FOR);
        let mut answer = self.agent.put(url.as_str()).header("content-md5", &content_md5).send(&data[..])?;
        checked_etag(&mut answer, &hex(&md5))?;
        Ok(Uploaded { bytes: data.len() as u64, sha256: hex(&Sha256::digest(&data)), parts: 1 })
    }
}

/// Reads up to [`PART_SIZE`] bytes (fewer only at the end of the file).
fn read_part(file: &mut std::fs::File) -> Result<Vec<u8>, UploadError> {
    let mut buf = Vec::with_capacity(PART_SIZE);
    file.by_ref().take(PART_SIZE as u64).read_to_end(&mut buf).map_err(UploadError::Read)?;
    Ok(buf)
}

/// The ETag of a 2xx answer, which must be `expected` (the MD5 hex of what was sent).
fn checked_etag(answer: &mut ureq::http::Response<ureq::Body>, expected: &str) -> Result<String, UploadError> {
    let etag = answer.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    answer_body(answer)?;
    let etag = etag.ok_or_else(|| UploadError::Answer("no ETag in the answer".into()))?;
    let got = etag.trim_matches('"');
    if !got.eq_ignore_ascii_case(expected) {
        return Err(UploadError::Checksum { expected: expected.to_owned(), got: got.to_owned() });
    }
    Ok(etag)
}

/// The body of a 2xx answer; any other status is an [`UploadError::Status`] with S3's
/// error code and message from the XML body.
fn answer_body(answer: &mut ureq::http::Response<ureq::Body>) -> Result<String, UploadError> {
    let status = answer.status().as_u16();
    let body = answer.body_mut().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let code = xml_field(&body, "Code")
        .unwrap_or_else(|| answer.status().canonical_reason().unwrap_or("error").replace(' ', ""));
    Err(UploadError::Status { status, code, message: xml_field(&body, "Message") })
}

/// The ETag in a CompleteMultipartUpload answer. S3 may answer 200 and still fail, with an
/// `<Error>` body; servers differ in the root element's name (AWS's
/// `CompleteMultipartUploadResult`, moto's `...Response`) and in quoting the ETag (`"..."`
/// or `&quot;...&quot;`), so the ETag element is read whatever its parent.
fn completed_etag(body: &str) -> Result<String, UploadError> {
    if body.contains("<Error>") {
        let code = xml_field(body, "Code").unwrap_or_else(|| "Error".into());
        return Err(UploadError::Status { status: 200, code, message: xml_field(body, "Message") });
    }
    let etag = xml_field(body, "ETag")
        .ok_or_else(|| UploadError::Answer(format!("CompleteMultipartUpload: no ETag in {body:?}")))?;
    Ok(etag.replace("&quot;", "").replace("&#34;", "").trim_matches('"').to_owned())
}

/// The text of the first `<name>` element of an S3 error body.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].trim().to_owned()).filter(|s| !s.is_empty())
}

/// The ETag S3 gives an object uploaded in parts: the MD5 of the parts' MD5s (their 16
/// bytes each, in order), in hex, then `-` and the number of parts.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut all = Md5::new();
    for m in part_md5s {
        all.update(m);
    }
    format!("{}-{}", hex(&all.finalize()), part_md5s.len())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two parts "a" and "b": MD5(MD5("a") ++ MD5("b")), as S3 computes it (the value was
    /// worked out with Python's hashlib: md5(md5(b"a").digest() + md5(b"b").digest())).
    #[test]
    fn multipart_etags_are_the_md5_of_the_part_md5s() {
        let parts: Vec<[u8; 16]> = [b"a", b"b"].iter().map(|p| Md5::digest(p).into()).collect();
        assert_eq!(multipart_etag(&parts), "96e024ba2074fe77e8e965ba43a704be-2");
        let one: [u8; 16] = Md5::digest(b"").into();
        assert_eq!(hex(&one), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(multipart_etag(&[one]).ends_with("-1"));
    }

    #[test]
    fn s3_errors_read_their_code_and_message() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("NoSuchBucket"));
        let e = UploadError::Status { status: 404, code: "NoSuchBucket".into(), message: xml_field(body, "Message") };
        assert_eq!(e.to_string(), "404 NoSuchBucket (The specified bucket does not exist)");
        assert_eq!(xml_field("<Error></Error>", "Code"), None);
        let aws = "<CompleteMultipartUploadResult><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>\
                   </CompleteMultipartUploadResult>";
        assert_eq!(completed_etag(aws).unwrap(), "3858f62230ac3c915f300c664312c11f-9");
        let failed = "<Error><Code>InternalError</Code><Message>try again</Message></Error>";
        assert_eq!(completed_etag(failed).unwrap_err().to_string(), "200 InternalError (try again)");
    }

    #[test]
    fn endpoints_are_path_style_and_aws_is_virtual_hosted() {
        let c = Client::new(Some("http://127.0.0.1:9000"), "rec", "us-east-1", None).unwrap();
        assert_eq!(c.bucket.object_url("p/a.wav").as_str(), "http://127.0.0.1:9000/rec/p/a.wav");
        let aws = Client::new(None, "rec", "eu-west-1", None).unwrap();
        assert_eq!(aws.bucket.object_url("a.wav").as_str(), "https://rec.s3.eu-west-1.amazonaws.com/a.wav");
    }
}
