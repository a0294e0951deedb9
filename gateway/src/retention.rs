//! Retention: the identifying part of a closed referral (identity, reason, local case
//! reference) is purged a configured time after the referral closed. What stays is
//! pseudonymous: the profile, the statuses and the audit trail.

use crate::problem::ApiError;
use crate::referrals::StoredReferral;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::{Read, keys};
use std::time::Duration;
use time::OffsetDateTime;

/// Purges what is due at `now`; returns how many referrals were purged.
pub async fn sweep(
    state: &AppState,
    now: OffsetDateTime,
    keep: Duration,
) -> Result<usize, ApiError> {
    let all: Vec<(Vec<u8>, StoredReferral)> = state.store.scan(keys::REFERRAL, None, usize::MAX)?;
    let due: Vec<StoredReferral> = all
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| crate::lifecycle::is_closed(r.status))
        .filter(|r| r.status_history.last().is_some_and(|e| now - e.at >= keep))
        .collect();
    let mut purged = 0;
    let mut last = None;
    for r in due {
        if state.store.get_bytes(&keys::vault(&r.id))?.is_none() {
            continue;
        }
        let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
            txn.remove(&keys::vault(&r.id));
            txn.audit(AuditRecord {
                at: now,
                actor: "gateway".into(),
                action: "retention.purge".into(),
                referral: Some(r.id.clone()),
                subject: Some(r.person.clone()),
                detail: Some(format!(
                    "closed as {} for longer than the retention period",
                    r.status.as_str()
                )),
            })?;
            Ok(())
        })?;
        last = Some(ticket);
        purged += 1;
    }
    // Used jti of signed requests are kept until their signature has expired (with leeway).
    let horizon = now.unix_timestamp() - 120;
    let used: Vec<(Vec<u8>, i64)> = state.store.scan(b"jti/", None, usize::MAX)?;
    let expired: Vec<Vec<u8>> = used
        .into_iter()
        .filter(|(_, exp)| *exp < horizon)
        .map(|(k, _)| k)
        .collect();
    if !expired.is_empty() {
        let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
            for k in &expired {
                txn.remove(k);
            }
            Ok(())
        })?;
        last = Some(ticket);
    }
    // One flush for the whole sweep; a purge lost to a crash is simply done again next time.
    if let Some(ticket) = last {
        state.store.durable(ticket).await?;
    }
    Ok(purged)
}

/// Runs the sweep every `every` until the task is dropped.
pub async fn run(state: actix_web::web::Data<AppState>, keep: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        match sweep(&state, OffsetDateTime::now_utc(), keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "retention sweep"),
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
        match crate::people::sessions::sweep(&state.store, OffsetDateTime::now_utc()) {
            Ok(Some(ticket)) => {
                if let Err(e) = state.store.durable(ticket).await {
                    tracing::error!(error = %e, "session sweep failed");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "session sweep failed"),
        }
    }
}
