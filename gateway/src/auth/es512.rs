//! ES512 (ECDSA P-521 with SHA-512), which jsonwebtoken does not implement, verified with
//! aws-lc-rs, the same library jsonwebtoken's `aws_lc_rs` backend uses for the others.

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P521_SHA512_FIXED};

/// Checks a JWS ES512 signature: `R || S`, 66 bytes each (RFC 7518 §3.4), over `message`.
/// `point` is the key as an uncompressed SEC1 point (`04 || x || y`).
pub fn verify(point: &[u8], message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 132 {
        return false;
    }
    UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P521_SHA512_FIXED_SIGNING};

    #[test]
    fn verifies_its_own_signatures_and_nothing_else() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let sig = pair.sign(&SystemRandom::new(), b"hello").unwrap();
        assert!(verify(&point, b"hello", sig.as_ref()));
        assert!(!verify(&point, b"hellO", sig.as_ref()));
        assert!(!verify(&point, b"hello", &sig.as_ref()[..131]));
        let mut flipped = sig.as_ref().to_vec();
        flipped[10] ^= 1;
        assert!(!verify(&point, b"hello", &flipped));
    }
}
