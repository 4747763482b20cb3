//! A generic webhook: the contract's delivery JSON, signed with
//! `X-Sightline-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::HttpRequest;
use crate::Notification;

pub const SIGNATURE_HEADER: &str = "X-Sightline-Signature";

/// `sha256=<hex>` of the body under the channel's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn request(url: &str, secret: &str, n: &Notification) -> HttpRequest {
    let body = serde_json::to_vec(&n.payload()).expect("a payload serializes");
    HttpRequest {
        method: "POST",
        url: url.to_owned(),
        headers: vec![(SIGNATURE_HEADER.to_owned(), signature(secret, &body))],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
