//! `[artifacts.s3]`: an S3-compatible bucket (AWS, MinIO, …) through
//! object_store's S3 client. Two pieces are ours so the master keeps one TLS
//! and crypto stack: the HTTP connector is the master's reqwest (rustls), and
//! SigV4's SHA-256 and HMAC are RustCrypto's (object_store's own choice would
//! bring aws-lc, which needs cmake and complicates the static musl build).
//! Credentials come from the usual `AWS_*` variables.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http;
use bytes::Bytes;
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, CryptoProvider, DigestAlgorithm, DigestContext, HmacContext, HttpClient,
    HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody,
    HttpService, Signer, SigningAlgorithm,
};
use object_store::ObjectStore;
use sha2::{Digest, Sha256};

use crate::config::S3Config;

/// The bucket as an object store.
pub fn bucket(cfg: &S3Config) -> object_store::Result<Arc<dyn ObjectStore>> {
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })?;
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&cfg.bucket)
        .with_http_connector(Connector(http))
        .with_crypto_provider(Arc::new(RustCrypto));
    if let Some(region) = &cfg.region {
        b = b.with_region(region);
    }
    if let Some(endpoint) = &cfg.endpoint {
        b = b
            .with_endpoint(endpoint.as_str())
            .with_allow_http(endpoint.as_str().starts_with("http://"));
    }
    Ok(Arc::new(b.build()?))
}

#[derive(Debug)]
struct Connector(reqwest::Client);

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Reqwest(self.0.clone())))
    }
}

#[derive(Debug)]
struct Reqwest(reqwest::Client);

fn kind(e: &reqwest::Error) -> HttpErrorKind {
    if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Request
    }
}

#[async_trait]
impl HttpService for Reqwest {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        // One part at most (5 MiB) in memory: object_store splits uploads.
        let body: Bytes = body
            .collect()
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?
            .to_bytes();
        let resp = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| HttpError::new(kind(&e), e))?;
        let mut out = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            out = out.header(k, v);
        }
        let stream = resp
            .bytes_stream()
            .map_ok(http_body::Frame::data)
            .map_err(|e| HttpError::new(kind(&e), e));
        out.body(HttpResponseBody::new(http_body_util::StreamBody::new(
            stream,
        )))
        .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))
    }
}

#[derive(Debug)]
struct RustCrypto;

fn unsupported(what: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("{what} is not supported by burst's S3 client").into(),
    }
}

impl CryptoProvider for RustCrypto {
    fn digest(&self, algorithm: DigestAlgorithm) -> object_store::Result<Box<dyn DigestContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => Ok(Box::new(Sha {
                hasher: Some(Sha256::new()),
                out: Vec::new(),
            })),
            _ => Err(unsupported("this digest")),
        }
    }

    fn hmac(
        &self,
        algorithm: DigestAlgorithm,
        secret: &[u8],
    ) -> object_store::Result<Box<dyn HmacContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => {
                let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|e| {
                    object_store::Error::Generic {
                        store: "S3",
                        source: Box::new(e),
                    }
                })?;
                Ok(Box::new(HmacSha {
                    mac: Some(mac),
                    out: Vec::new(),
                }))
            }
            _ => Err(unsupported("this HMAC")),
        }
    }

    fn sign(&self, _: SigningAlgorithm, _: &[u8]) -> object_store::Result<Box<dyn Signer>> {
        Err(unsupported("RSA signing"))
    }
}

struct Sha {
    hasher: Option<Sha256>,
    out: Vec<u8>,
}

impl DigestContext for Sha {
    fn update(&mut self, data: &[u8]) {
        if let Some(h) = self.hasher.as_mut() {
            h.update(data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(h) = self.hasher.take() {
            self.out = h.finalize().to_vec();
        }
        Ok(&self.out)
    }
}

struct HmacSha {
    mac: Option<Hmac<Sha256>>,
    out: Vec<u8>,
}

impl HmacContext for HmacSha {
    fn update(&mut self, data: &[u8]) {
        if let Some(m) = self.mac.as_mut() {
            m.update(data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(m) = self.mac.take() {
            self.out = m.finalize().into_bytes().to_vec();
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crypto_matches_known_answers() {
        let mut d = RustCrypto.digest(DigestAlgorithm::Sha256).unwrap();
        d.update(b"bin");
        d.update(b"ary");
        assert_eq!(
            d.finish()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"
        );
        // RFC 4231, test case 2.
        let mut m = RustCrypto.hmac(DigestAlgorithm::Sha256, b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            m.finish()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
