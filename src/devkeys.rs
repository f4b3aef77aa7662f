//! Signing keys for local development and tests: the key `make run` signs
//! its demo JWT with, and the keys the tests forge tokens with. Never used
//! by the deployed function, which only verifies.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::{engine::general_purpose::STANDARD, Engine};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

pub struct DevKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// PKCS#8 DER, so the key can be saved and loaded again.
    pub pkcs8: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("dev key: {0}")]
pub struct DevKeyError(String);

fn err(e: impl std::fmt::Display) -> DevKeyError {
    DevKeyError(e.to_string())
}

impl DevKey {
    pub fn generate_es256(kid: &str) -> Result<Self, DevKeyError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).map_err(err)?;
        Self::from_pkcs8(kid, Algorithm::ES256, pkcs8.as_ref())
    }

    pub fn generate_rsa(kid: &str, alg: Algorithm) -> Result<Self, DevKeyError> {
        Self::generate_rsa_of(kid, alg, aws_lc_rs::rsa::KeySize::Rsa2048)
    }

    pub fn generate_rsa_of(kid: &str, alg: Algorithm, size: aws_lc_rs::rsa::KeySize) -> Result<Self, DevKeyError> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(err)?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(err)?;
        Self::from_pkcs8(kid, alg, der.as_ref())
    }

    pub fn from_pkcs8(kid: &str, alg: Algorithm, pkcs8: &[u8]) -> Result<Self, DevKeyError> {
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_der(pkcs8),
            _ => EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8).as_bytes()).map_err(err)?,
        };
        Ok(DevKey { kid: kid.into(), alg, encoding, pkcs8: pkcs8.to_vec() })
    }

    pub fn jwk(&self) -> Result<Jwk, DevKeyError> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).map_err(err)?;
        jwk.common.key_id = Some(self.kid.clone());
        Ok(jwk)
    }

    /// The key set holding just this key, as the function reads it.
    pub fn jwks_json(&self) -> Result<String, DevKeyError> {
        jwks_json(&[self])
    }

    /// Signs `claims` with this key, naming it in the header.
    pub fn sign(&self, claims: &Value) -> Result<String, DevKeyError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).map_err(err)
    }

    /// The public half as SubjectPublicKeyInfo DER (for key-confusion tests).
    pub fn public_key_der(&self) -> Result<Vec<u8>, DevKeyError> {
        match self.alg {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8).map_err(err)?;
                Ok(pair.public_key().as_ref().to_vec())
            }
            _ => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&self.pkcs8).map_err(err)?;
                let der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).map_err(err)?;
                Ok(der.as_ref().to_vec())
            }
        }
    }
}

pub fn jwks_json(keys: &[&DevKey]) -> Result<String, DevKeyError> {
    let keys = keys.iter().map(|k| k.jwk()).collect::<Result<Vec<_>, _>>()?;
    serde_json::to_string(&JwkSet { keys }).map_err(err)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
