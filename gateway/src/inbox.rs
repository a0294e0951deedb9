//! Inboxes: what is addressed to a party, in order, resumable from a cursor, with long-poll.
//! Only durable events are shown, so a party never acts on something a crash could undo.

use crate::problem::ApiError;
use crate::referrals::{InboxEvent, StoredReferral};
use crate::state::AppState;
use crate::store::Read;
use crate::store::keys;
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;

pub struct Page {
    pub items: Vec<Value>,
    pub next_cursor: String,
}

/// Cursors are opaque to clients; today they are the sequence number in decimal.
pub fn parse_cursor(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(s) => s.parse().map_err(|_| ApiError::BadParameter {
            parameter: "after",
            message: "not a cursor returned by this gateway (use next_cursor from a previous page)"
                .into(),
        }),
    }
}

fn page(state: &AppState, party: &str, after: u64, now: OffsetDateTime) -> Result<Page, ApiError> {
    let prefix = keys::inbox_prefix(party);
    let durable = state.store.durable_seq();
    let start = keys::inbox(party, after);
    let events: Vec<(Vec<u8>, InboxEvent)> =
        state
            .store
            .scan(&prefix, Some(&start), state.inbox_page_size)?;
    let mut items = Vec::with_capacity(events.len());
    let mut cursor = after;
    for (key, event) in events {
        let seq = keys::decode_u64(&key);
        if seq > durable {
            break;
        }
        cursor = seq;
        let current: Option<StoredReferral> = state.store.get(&keys::referral(&event.referral))?;
        let mut item = serde_json::to_value(&event).map_err(|_| ApiError::Internal)?;
        if let (Some(obj), Some(r)) = (item.as_object_mut(), current) {
            obj.insert("cursor".into(), Value::String(seq.to_string()));
            obj.insert(
                "current_status".into(),
                serde_json::to_value(r.status).unwrap_or_default(),
            );
            obj.insert(
                "urgency".into(),
                serde_json::to_value(r.urgency).unwrap_or_default(),
            );
            obj.insert(
                "due_at".into(),
                Value::String(
                    r.due_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                ),
            );
            obj.insert("overdue".into(), Value::Bool(r.overdue(now)));
        }
        items.push(item);
    }
    Ok(Page {
        items,
        next_cursor: cursor.to_string(),
    })
}

/// One page after `after`; when empty, waits up to `wait` for something to arrive.
pub async fn list(
    state: &AppState,
    party: &str,
    after: u64,
    wait: Duration,
    clock: impl Fn() -> OffsetDateTime,
) -> Result<Page, ApiError> {
    let deadline = tokio::time::Instant::now() + wait.min(state.inbox_max_wait);
    loop {
        let durable = state.store.durable_seq();
        let found = page(state, party, after, clock())?;
        if !found.items.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        if tokio::time::timeout_at(deadline, state.store.wait_durable_past(durable))
            .await
            .is_err()
        {
            return page(state, party, after, clock());
        }
    }
}
