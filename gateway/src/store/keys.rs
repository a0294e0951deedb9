//! Key layout of the single sled tree. Prefixes keep record kinds apart; sequence numbers are
//! big-endian so that key order is sequence order.

pub const META_SEQ: &[u8] = b"meta/seq";
pub const META_AUDIT_HEAD: &[u8] = b"meta/audit-head";
pub const AUDIT: &[u8] = b"audit/";
pub const REFERRAL: &[u8] = b"ref/";
pub const AWAITING: &[u8] = b"await/";

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(p);
    }
    k
}

pub fn audit(seq: u64) -> Vec<u8> {
    let mut k = AUDIT.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn referral(id: &str) -> Vec<u8> {
    join(&[b"ref", id.as_bytes()])
}

pub fn vault(id: &str) -> Vec<u8> {
    join(&[b"vault", id.as_bytes()])
}

/// Referrals waiting for a first response, for the overdue count.
pub fn awaiting(id: &str) -> Vec<u8> {
    join(&[b"await", id.as_bytes()])
}

/// An idempotency record: the sender and a digest of its key (keys may be derived from local
/// record ids, so they are not stored as given).
pub fn idempotency(sender: &str, key_digest: &str) -> Vec<u8> {
    join(&[b"idem", sender.as_bytes(), key_digest.as_bytes()])
}

pub fn inbox_prefix(party: &str) -> Vec<u8> {
    let mut k = join(&[b"inbox", party.as_bytes()]);
    k.push(b'/');
    k
}

pub fn inbox(party: &str, seq: u64) -> Vec<u8> {
    let mut k = inbox_prefix(party);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn structure_prefix() -> Vec<u8> {
    b"struct/".to_vec()
}

pub fn structure(ambito: &str, id: &str) -> Vec<u8> {
    join(&[b"struct", ambito.as_bytes(), id.as_bytes()])
}

/// The trailing big-endian sequence number of a key, or of a stored counter.
pub fn decode_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    buf[8 - tail.len()..].copy_from_slice(tail);
    u64::from_be_bytes(buf)
}

/// Audit entries about one person: `subj/<linkage id>/<seq>`.
pub fn subject_prefix(person: &str) -> Vec<u8> {
    format!("subj/{person}/").into_bytes()
}

/// Referrals about one person: `pref/<linkage id>/<referral id>`.
pub fn person_referral(person: &str, referral: &str) -> Vec<u8> {
    format!("pref/{person}/{referral}").into_bytes()
}

pub fn person_referral_prefix(person: &str) -> Vec<u8> {
    format!("pref/{person}/").into_bytes()
}

/// A used jti (digest) of a party's signed requests, with its expiry.
pub fn jti(party: &str, jti_digest: &str) -> Vec<u8> {
    format!("jti/{party}/{jti_digest}").into_bytes()
}

/// The signed token a referral was sent with: evidence that the sender sent exactly this body.
pub fn evidence(referral: &str) -> Vec<u8> {
    format!("evidence/{referral}").into_bytes()
}

pub const SESSION: &[u8] = b"session/";
pub const SIGN_IN: &[u8] = b"signin/";

/// A console session, by the digest of its cookie (the cookie itself is never stored).
pub fn session(token_digest: &str) -> Vec<u8> {
    join(&[b"session", token_digest.as_bytes()])
}

/// A sign-in in progress, by the digest of its OpenID Connect state.
pub fn sign_in(state_digest: &str) -> Vec<u8> {
    join(&[b"signin", state_digest.as_bytes()])
}
