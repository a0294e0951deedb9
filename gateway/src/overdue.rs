//! Referrals past their service level without a first response.

use crate::store::{Store, StoreError, keys};
use raccordo_schemas::Urgency;
use time::OffsetDateTime;

pub fn count(store: &Store, now: OffsetDateTime) -> Result<Vec<(Urgency, i64)>, StoreError> {
    let waiting: Vec<(Vec<u8>, (Urgency, i64))> = store.scan(keys::AWAITING, None, usize::MAX)?;
    let mut counts = vec![
        (Urgency::Immediate, 0),
        (Urgency::Urgent, 0),
        (Urgency::Ordinary, 0),
    ];
    let now = now.unix_timestamp();
    for (_, (urgency, due)) in waiting {
        if due < now
            && let Some(c) = counts.iter_mut().find(|(u, _)| *u == urgency)
        {
            c.1 += 1;
        }
    }
    Ok(counts)
}
