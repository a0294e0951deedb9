//! Console sessions and sign-ins in progress, kept in the store so that any gateway process can
//! serve the next request. Only digests of the cookie and of the state are keys: a copy of the
//! store does not hand out live sessions. Sign-in and sign-out are audited.

use crate::authorization::Role;
use crate::store::audit::AuditRecord;
use crate::store::{Read, Store, StoreError, Ticket, keys};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A sign-in sent to the provider and not back yet. Single use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub pkce_verifier: String,
    pub nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub actor: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// The synchronizer token every console form must carry.
    pub csrf: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

/// How long a sign-in may take at the provider.
pub const SIGN_IN_LIFETIME: time::Duration = time::Duration::minutes(10);

pub fn digest(token: &str) -> String {
    crate::pki::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    )
}

/// 256 random bits, base64url: cookies, CSRF tokens.
pub fn random_token() -> Result<String, StoreError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StoreError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn begin_sign_in(
    store: &Store,
    state: &str,
    pending: &PendingSignIn,
) -> Result<Ticket, StoreError> {
    Ok(store
        .write(|txn| -> Result<(), StoreError> {
            txn.put(&keys::sign_in(&digest(state)), pending)
        })?
        .1)
}

/// Takes the sign-in with this state, if it exists and has not expired; it cannot be used again.
pub fn take_sign_in(
    store: &Store,
    state: &str,
    now: OffsetDateTime,
) -> Result<(Option<PendingSignIn>, Ticket), StoreError> {
    let key = keys::sign_in(&digest(state));
    store.write(|txn| -> Result<Option<PendingSignIn>, StoreError> {
        let found: Option<PendingSignIn> = txn.get(&key)?;
        if found.is_some() {
            txn.remove(&key);
        }
        Ok(found.filter(|p| p.expires > now))
    })
}

/// Opens a session; returns the cookie value, which is not stored anywhere.
pub fn open(
    store: &Store,
    session: &Session,
    now: OffsetDateTime,
) -> Result<(String, Ticket), StoreError> {
    let token = random_token()?;
    let key = keys::session(&digest(&token));
    let (_, ticket) = store.write(|txn| -> Result<(), StoreError> {
        txn.put(&key, session)?;
        txn.audit(AuditRecord {
            at: now,
            actor: session.actor.clone(),
            action: "console.sign-in".into(),
            referral: None,
            subject: None,
            detail: Some(format!(
                "roles: {}",
                session
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
        })
    })?;
    Ok((token, ticket))
}

/// The live session behind a cookie, if any.
pub fn find(
    store: &Store,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<Session>, StoreError> {
    let session: Option<Session> = store.get(&keys::session(&digest(token)))?;
    Ok(session.filter(|s| s.expires > now))
}

pub fn close(
    store: &Store,
    token: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Ticket, StoreError> {
    let key = keys::session(&digest(token));
    Ok(store
        .write(|txn| -> Result<(), StoreError> {
            txn.remove(&key);
            txn.audit(AuditRecord {
                at: now,
                actor: actor.to_owned(),
                action: "console.sign-out".into(),
                referral: None,
                subject: None,
                detail: None,
            })
        })?
        .1)
}

/// Removes expired sessions and abandoned sign-ins; run with the retention sweep.
pub fn sweep(store: &Store, now: OffsetDateTime) -> Result<Option<Ticket>, StoreError> {
    #[derive(Deserialize)]
    struct Expiring {
        #[serde(with = "time::serde::rfc3339")]
        expires: OffsetDateTime,
    }
    let mut due = Vec::new();
    for prefix in [keys::SESSION, keys::SIGN_IN] {
        for key in store.keys_with_prefix(prefix)? {
            if store
                .get::<Expiring>(&key)?
                .is_some_and(|e| e.expires <= now)
            {
                due.push(key);
            }
        }
    }
    if due.is_empty() {
        return Ok(None);
    }
    let (_, ticket) = store.write(|txn| -> Result<(), StoreError> {
        for key in &due {
            txn.remove(key);
        }
        Ok(())
    })?;
    Ok(Some(ticket))
}
