//! The uploader's S3 client against a real S3 server (moto): a file over 8 MiB goes in
//! parts, each checked by its MD5, and the object's ETag is MD5(the parts' MD5s)-N; a small
//! one goes in one PUT whose ETag is its MD5; a bucket that does not exist is a clear error.
//! (Called directly: through the daemon, a file of 8 MiB is a 90 s call.)

use crate::common::s3::{Moto, KEY_ID, SECRET};

use md5::{Digest as _, Md5};
use sha2::Sha256;
use tapedeck::workers::uploads::s3::{hex, Client, UploadError, PART_SIZE};

/// `len` bytes that differ from part to part (a simple LCG).
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

#[test]
fn large_files_go_in_checked_parts_and_small_ones_in_one_put() {
    let moto = Moto::start();
    moto.create_bucket("parts");
    let client =
        Client::new(Some(&moto.endpoint()), "parts", "us-east-1", Some((KEY_ID.into(), SECRET.into()))).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let big = data(2 * PART_SIZE + 12_345);
    let path = dir.path().join("big.wav");
    std::fs::write(&path, &big).unwrap();
    let up = client.upload(&path, "rec/big.wav").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((up.parts, up.bytes), (3, big.len() as u64));
    assert_eq!(up.sha256, hex(&Sha256::digest(&big)));
    let listed = moto.list("parts", "rec/");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (key, size, etag) = &listed[0];
    assert_eq!((key.as_str(), *size), ("rec/big.wav", big.len() as u64));
    let mut md5s = Vec::new();
    for part in big.chunks(PART_SIZE) {
        md5s.extend_from_slice(&Md5::digest(part));
    }
    assert_eq!(etag, &format!("{}-3", hex(&Md5::digest(&md5s))), "the multipart ETag");
    assert!(moto.get("parts", "rec/big.wav") == big, "the object's bytes are not the file's");

    // Exactly one part's size, and a small file: one PUT each.
    for (name, len) in [("exact.wav", PART_SIZE), ("small.wav", 44 + 960)] {
        let bytes = data(len);
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let up = client.upload(&path, &format!("rec/{name}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(up.parts, 1, "{name}");
        let listed = moto.list("parts", &format!("rec/{name}"));
        assert_eq!(listed[0].2, hex(&Md5::digest(&bytes)), "{name}: the ETag is the MD5");
        assert!(moto.get("parts", &format!("rec/{name}")) == bytes, "{name}");
    }

    let missing =
        Client::new(Some(&moto.endpoint()), "no-such-bucket", "us-east-1", Some((KEY_ID.into(), SECRET.into())))
            .unwrap();
    let e = missing.upload(&path, "rec/big.wav").unwrap_err();
    assert!(matches!(&e, UploadError::Status { status: 404, code, .. } if code == "NoSuchBucket"), "{e}");
}
