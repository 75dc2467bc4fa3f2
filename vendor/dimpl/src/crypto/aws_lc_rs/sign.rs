//! Signing and key loading implementations using aws-lc-rs.

use std::str;

use aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, UnparsedPublicKey};
use aws_lc_rs::signature::{ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
use aws_lc_rs::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA512, RsaParameters};
use der::{Decode, Encode};
use spki::ObjectIdentifier;
use x509_cert::Certificate as X509Certificate;

use super::super::{KeyProvider, SignatureVerifier, SigningKey, check_verify_scheme};
use super::super::{OID_P256, OID_P384, OID_RSA_ENCRYPTION, check_rsa_verify_hash};
use crate::buffer::Buf;
use crate::types::{HashAlgorithm, NamedGroup, SignatureAlgorithm};
use crate::{CryptoError, CryptoOperation};

/// ECDSA signing key implementation.
struct EcdsaSigningKey {
    key_pair: EcdsaKeyPair,
    signing_algorithm: &'static EcdsaSigningAlgorithm,
}

impl std::fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcdsaSigningKey")
            .field("signing_algorithm", &self.signing_algorithm)
            .finish()
    }
}

impl SigningKey for EcdsaSigningKey {
    fn sign(
        &mut self,
        data: &[u8],
        hash_alg: HashAlgorithm,
        buf: &mut Buf,
    ) -> Result<(), CryptoError> {
        let key_hash = self.hash_algorithm();
        if hash_alg != key_hash {
            return Err(CryptoError::SigningKeyHashMismatch {
                key_hash,
                requested: hash_alg,
            });
        }
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = self
            .key_pair
            .sign(&rng, data)
            .map_err(|_| CryptoError::OperationFailed(CryptoOperation::Sign))?;
        buf.clear();
        buf.extend_from_slice(signature.as_ref());
        Ok(())
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }

    fn hash_algorithm(&self) -> HashAlgorithm {
        if self.signing_algorithm == &ECDSA_P256_SHA256_ASN1_SIGNING {
            HashAlgorithm::SHA256
        } else if self.signing_algorithm == &ECDSA_P384_SHA384_ASN1_SIGNING {
            HashAlgorithm::SHA384
        } else {
            panic!("Unsupported signing algorithm")
        }
    }

    fn supported_hash_algorithms(&self) -> &[HashAlgorithm] {
        // aws-lc-rs locks the hash at key-load time; only one is supported.
        if self.signing_algorithm == &ECDSA_P256_SHA256_ASN1_SIGNING {
            &[HashAlgorithm::SHA256]
        } else if self.signing_algorithm == &ECDSA_P384_SHA384_ASN1_SIGNING {
            &[HashAlgorithm::SHA384]
        } else {
            panic!("Unsupported signing algorithm")
        }
    }
}

/// Key provider implementation.
#[derive(Debug)]
pub(super) struct AwsLcKeyProvider;

impl KeyProvider for AwsLcKeyProvider {
    fn load_private_key(&self, key_der: &[u8]) -> Result<Box<dyn SigningKey>, CryptoError> {
        // Try PKCS#8 DER format first (most common)
        if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key_der) {
            return Ok(Box::new(EcdsaSigningKey {
                key_pair,
                signing_algorithm: &ECDSA_P256_SHA256_ASN1_SIGNING,
            }));
        }
        if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, key_der) {
            return Ok(Box::new(EcdsaSigningKey {
                key_pair,
                signing_algorithm: &ECDSA_P384_SHA384_ASN1_SIGNING,
            }));
        }

        // Try parsing as SEC1 DER format (OpenSSL EC private key format)
        if let Ok(ec_key) = sec1::EcPrivateKey::try_from(key_der) {
            let private_key_len = ec_key.private_key.len();

            let curve_oid = if let Some(params) = &ec_key.parameters {
                match params {
                    sec1::EcParameters::NamedCurve(oid) => Some(*oid),
                }
            } else if private_key_len == 32 {
                Some(ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7")) // P-256
            } else if private_key_len == 48 {
                Some(ObjectIdentifier::new_unwrap("1.3.132.0.34")) // P-384
            } else {
                None
            };

            if let Some(curve_oid) = curve_oid {
                let ec_alg_oid = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
                let curve_params_der = curve_oid
                    .to_der()
                    .map_err(|_| CryptoError::OperationFailed(CryptoOperation::EncodeKey))?;
                let curve_params_any = der::asn1::AnyRef::try_from(curve_params_der.as_slice())
                    .map_err(|_| CryptoError::OperationFailed(CryptoOperation::EncodeKey))?;

                let algorithm = spki::AlgorithmIdentifierRef {
                    oid: ec_alg_oid,
                    parameters: Some(curve_params_any),
                };

                let private_key = der::asn1::OctetStringRef::new(key_der)
                    .map_err(|_| CryptoError::OperationFailed(CryptoOperation::EncodeKey))?;
                let pkcs8 = pkcs8::PrivateKeyInfoRef {
                    algorithm,
                    private_key,
                    public_key: None,
                };

                let pkcs8_der = pkcs8
                    .to_der()
                    .map_err(|_| CryptoError::OperationFailed(CryptoOperation::EncodeKey))?;

                let p256_curve = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
                if curve_oid == p256_curve
                    && let Ok(key_pair) =
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8_der)
                {
                    return Ok(Box::new(EcdsaSigningKey {
                        key_pair,
                        signing_algorithm: &ECDSA_P256_SHA256_ASN1_SIGNING,
                    }));
                }

                let p384_curve = ObjectIdentifier::new_unwrap("1.3.132.0.34");
                if curve_oid == p384_curve
                    && let Ok(key_pair) =
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &pkcs8_der)
                {
                    return Ok(Box::new(EcdsaSigningKey {
                        key_pair,
                        signing_algorithm: &ECDSA_P384_SHA384_ASN1_SIGNING,
                    }));
                }
            }
        }

        // Check if it's a PEM encoded key
        if let Ok(pem_str) = str::from_utf8(key_der)
            && pem_str.contains("-----BEGIN")
            && let Ok((_label, doc)) = pkcs8::Document::from_pem(pem_str)
        {
            return self.load_private_key(doc.as_bytes());
        }

        Err(CryptoError::InvalidPrivateKey)
    }
}

/// Signature verifier implementation.
#[derive(Debug)]
pub(super) struct AwsLcSignatureVerifier;

impl SignatureVerifier for AwsLcSignatureVerifier {
    fn verify_signature(
        &self,
        cert_der: &[u8],
        data: &[u8],
        signature: &[u8],
        hash_alg: HashAlgorithm,
        sig_alg: SignatureAlgorithm,
    ) -> Result<(), CryptoError> {
        if sig_alg != SignatureAlgorithm::ECDSA && sig_alg != SignatureAlgorithm::RSA {
            return Err(CryptoError::UnsupportedSignatureAlgorithm(sig_alg));
        }

        let cert =
            X509Certificate::from_der(cert_der).map_err(|_| CryptoError::CertificateParseFailed)?;
        let spki = cert.tbs_certificate().subject_public_key_info();

        if sig_alg == SignatureAlgorithm::RSA {
            // PKCS#1 v1.5 (a peer's RSA client certificate). The key must be an RSA key:
            // an RSA signature never verifies against an EC key, nor the reverse below.
            if spki.algorithm.oid != OID_RSA_ENCRYPTION {
                return Err(CryptoError::UnsupportedPublicKeyAlgorithm);
            }
            check_rsa_verify_hash(hash_alg)?;
            let algorithm: &RsaParameters = match hash_alg {
                HashAlgorithm::SHA256 => &RSA_PKCS1_2048_8192_SHA256,
                HashAlgorithm::SHA384 => &RSA_PKCS1_2048_8192_SHA384,
                HashAlgorithm::SHA512 => &RSA_PKCS1_2048_8192_SHA512,
                // unreachable: check_rsa_verify_hash already validated
                _ => unreachable!(),
            };
            // The subjectPublicKey of rsaEncryption is the DER RSAPublicKey aws-lc-rs takes.
            let pubkey_bytes = spki
                .subject_public_key
                .as_bytes()
                .ok_or(CryptoError::InvalidSubjectPublicKey)?;
            return UnparsedPublicKey::new(algorithm, pubkey_bytes)
                .verify(data, signature)
                .map_err(|_| CryptoError::RsaSignatureVerificationFailed { hash: hash_alg });
        }

        const OID_EC_PUBLIC_KEY: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

        if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
            return Err(CryptoError::UnsupportedPublicKeyAlgorithm);
        }

        let pubkey_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or(CryptoError::InvalidSubjectPublicKey)?;

        let curve_oid: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or(CryptoError::MissingEcCurveParameter)?
            .decode_as()
            .map_err(|_| CryptoError::InvalidEcCurveParameter)?;

        let group = match curve_oid {
            OID_P256 => NamedGroup::Secp256r1,
            OID_P384 => NamedGroup::Secp384r1,
            _ => return Err(CryptoError::UnsupportedEcCurve),
        };

        check_verify_scheme(sig_alg, hash_alg, group)?;

        let algorithm: &EcdsaVerificationAlgorithm = match (group, hash_alg) {
            (NamedGroup::Secp256r1, HashAlgorithm::SHA256) => &ECDSA_P256_SHA256_ASN1,
            (NamedGroup::Secp256r1, HashAlgorithm::SHA384) => &ECDSA_P256_SHA384_ASN1,
            (NamedGroup::Secp384r1, HashAlgorithm::SHA256) => &ECDSA_P384_SHA256_ASN1,
            (NamedGroup::Secp384r1, HashAlgorithm::SHA384) => &ECDSA_P384_SHA384_ASN1,
            // unreachable: check_verify_scheme already validated
            _ => unreachable!(),
        };

        let public_key = UnparsedPublicKey::new(algorithm, pubkey_bytes);
        public_key
            .verify(data, signature)
            .map_err(|_| CryptoError::SignatureVerificationFailed {
                signature: sig_alg,
                hash: hash_alg,
                group,
            })
    }
}

/// Static instance of the key provider.
pub(super) static KEY_PROVIDER: AwsLcKeyProvider = AwsLcKeyProvider;

/// Static instance of the signature verifier.
pub(super) static SIGNATURE_VERIFIER: AwsLcSignatureVerifier = AwsLcSignatureVerifier;

#[cfg(all(test, feature = "rcgen"))]
mod tests {
    use super::*;
    use crate::certificate::generate_self_signed_certificate;

    #[test]
    fn invalid_signature_returns_structured_verification_error() {
        let cert = generate_self_signed_certificate().expect("generate cert");
        let mut key = KEY_PROVIDER
            .load_private_key(&cert.private_key)
            .expect("load private key");
        let data = b"signed data";
        let mut signature = Buf::new();
        key.sign(data, HashAlgorithm::SHA256, &mut signature)
            .expect("sign data");

        let last = signature.len() - 1;
        signature[last] ^= 0x01;

        let err = SIGNATURE_VERIFIER
            .verify_signature(
                &cert.certificate,
                data,
                &signature,
                HashAlgorithm::SHA256,
                SignatureAlgorithm::ECDSA,
            )
            .expect_err("corrupt signature should fail");

        assert_eq!(
            err,
            CryptoError::SignatureVerificationFailed {
                signature: SignatureAlgorithm::ECDSA,
                hash: HashAlgorithm::SHA256,
                group: NamedGroup::Secp256r1,
            }
        );
    }

    /// A self-signed RSA-2048 certificate, as OpenSSL-based WebRTC stacks (GStreamer) make
    /// them, and its key for signing.
    fn rsa_peer() -> (Vec<u8>, aws_lc_rs::rsa::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let params = rcgen::CertificateParams::new(vec!["rsa-peer".to_string()]).unwrap();
        let cert = params
            .self_signed(&key)
            .expect("self-signed RSA certificate");
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.serialize_der()).expect("pkcs8");
        (cert.der().to_vec(), pair)
    }

    fn rsa_sign(pair: &aws_lc_rs::rsa::KeyPair, hash: HashAlgorithm, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512};
        let padding = match hash {
            HashAlgorithm::SHA256 => &RSA_PKCS1_SHA256,
            HashAlgorithm::SHA384 => &RSA_PKCS1_SHA384,
            HashAlgorithm::SHA512 => &RSA_PKCS1_SHA512,
            _ => panic!("no PKCS#1 signing with {hash:?} in these tests"),
        };
        let mut sig = vec![0; pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        pair.sign(padding, &rng, data, &mut sig).expect("sign");
        sig
    }

    #[test]
    fn rsa_pkcs1_signatures_verify_with_sha256_384_512() {
        let (cert, pair) = rsa_peer();
        let data = b"handshake transcript";
        for hash in [
            HashAlgorithm::SHA256,
            HashAlgorithm::SHA384,
            HashAlgorithm::SHA512,
        ] {
            let sig = rsa_sign(&pair, hash, data);
            SIGNATURE_VERIFIER
                .verify_signature(&cert, data, &sig, hash, SignatureAlgorithm::RSA)
                .unwrap_or_else(|e| panic!("{hash:?}: {e}"));
        }
    }

    #[test]
    fn rsa_signature_over_other_data_or_other_hash_is_refused() {
        let (cert, pair) = rsa_peer();
        let sig = rsa_sign(&pair, HashAlgorithm::SHA256, b"handshake transcript");
        let refused = |data: &[u8], hash| {
            SIGNATURE_VERIFIER
                .verify_signature(&cert, data, &sig, hash, SignatureAlgorithm::RSA)
                .expect_err("must not verify")
        };
        assert_eq!(
            refused(b"another transcript", HashAlgorithm::SHA256),
            CryptoError::RsaSignatureVerificationFailed {
                hash: HashAlgorithm::SHA256
            }
        );
        // Claiming another hash than the one signed with fails too.
        assert_eq!(
            refused(b"handshake transcript", HashAlgorithm::SHA384),
            CryptoError::RsaSignatureVerificationFailed {
                hash: HashAlgorithm::SHA384
            }
        );
    }

    #[test]
    fn rsa_signature_from_another_key_is_refused() {
        let (cert, _) = rsa_peer();
        let (_, other) = rsa_peer();
        let sig = rsa_sign(&other, HashAlgorithm::SHA256, b"transcript");
        let err = SIGNATURE_VERIFIER
            .verify_signature(
                &cert,
                b"transcript",
                &sig,
                HashAlgorithm::SHA256,
                SignatureAlgorithm::RSA,
            )
            .expect_err("a signature by another key must not verify");
        assert!(matches!(
            err,
            CryptoError::RsaSignatureVerificationFailed { .. }
        ));
    }

    #[test]
    fn rsa_with_sha1_is_refused() {
        let (cert, pair) = rsa_peer();
        let sig = rsa_sign(&pair, HashAlgorithm::SHA256, b"transcript");
        let err = SIGNATURE_VERIFIER
            .verify_signature(
                &cert,
                b"transcript",
                &sig,
                HashAlgorithm::SHA1,
                SignatureAlgorithm::RSA,
            )
            .expect_err("SHA-1 is not accepted");
        assert_eq!(
            err,
            CryptoError::UnsupportedSignaturePair {
                signature: SignatureAlgorithm::RSA,
                hash: HashAlgorithm::SHA1
            }
        );
    }

    #[test]
    fn signature_kind_must_match_the_certificate_key() {
        let (rsa_cert, pair) = rsa_peer();
        let rsa_sig = rsa_sign(&pair, HashAlgorithm::SHA256, b"transcript");
        // An RSA key presented as an ECDSA signature.
        let err = SIGNATURE_VERIFIER
            .verify_signature(
                &rsa_cert,
                b"transcript",
                &rsa_sig,
                HashAlgorithm::SHA256,
                SignatureAlgorithm::ECDSA,
            )
            .expect_err("RSA certificate, ECDSA claim");
        assert_eq!(err, CryptoError::UnsupportedPublicKeyAlgorithm);

        // An EC key presented as an RSA signature.
        let ec = generate_self_signed_certificate().expect("generate cert");
        let mut key = KEY_PROVIDER.load_private_key(&ec.private_key).unwrap();
        let mut ec_sig = Buf::new();
        key.sign(b"transcript", HashAlgorithm::SHA256, &mut ec_sig)
            .unwrap();
        let err = SIGNATURE_VERIFIER
            .verify_signature(
                &ec.certificate,
                b"transcript",
                &ec_sig,
                HashAlgorithm::SHA256,
                SignatureAlgorithm::RSA,
            )
            .expect_err("EC certificate, RSA claim");
        assert_eq!(err, CryptoError::UnsupportedPublicKeyAlgorithm);
    }

    #[test]
    fn rsa_keys_below_2048_bits_are_refused() {
        // Made with `openssl req -x509 -newkey rsa:1024` and
        // `openssl dgst -sha256 -sign` over the message below; OpenSSL verifies it.
        let cert = include_bytes!("testdata/rsa1024_cert.der");
        let sig = include_bytes!("testdata/rsa1024_sha256_sig.bin");
        let err = SIGNATURE_VERIFIER
            .verify_signature(
                cert,
                b"dimpl rsa test message",
                sig,
                HashAlgorithm::SHA256,
                SignatureAlgorithm::RSA,
            )
            .expect_err("1024-bit RSA is too weak");
        assert_eq!(
            err,
            CryptoError::RsaSignatureVerificationFailed {
                hash: HashAlgorithm::SHA256
            }
        );
    }
}
