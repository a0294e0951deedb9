//! The referral lifecycle as a state machine: which moves exist and who may make them.
//!
//! The statuses are FHIR Task's. The sender creates, sends and withdraws its request; the
//! receiver acknowledges, decides and reports on the work. `entered-in-error` is the sender's
//! correction of a referral that should never have existed.

use raccordo_schemas::ReferralStatus::{self, *};

/// Which side of a referral a party is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sender,
    Receiver,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
}

/// Every allowed move: from, to, and the side that may make it.
pub const MOVES: &[(ReferralStatus, ReferralStatus, Side)] = &[
    (Draft, Requested, Side::Sender),
    (Draft, Cancelled, Side::Sender),
    (Draft, EnteredInError, Side::Sender),
    (Requested, Received, Side::Receiver),
    (Requested, Accepted, Side::Receiver),
    (Requested, Rejected, Side::Receiver),
    (Requested, Cancelled, Side::Sender),
    (Requested, EnteredInError, Side::Sender),
    (Received, Accepted, Side::Receiver),
    (Received, Rejected, Side::Receiver),
    (Received, Cancelled, Side::Sender),
    (Received, EnteredInError, Side::Sender),
    (Accepted, InProgress, Side::Receiver),
    (Accepted, OnHold, Side::Receiver),
    (Accepted, Completed, Side::Receiver),
    (Accepted, Failed, Side::Receiver),
    (Accepted, Cancelled, Side::Sender),
    (Accepted, EnteredInError, Side::Sender),
    (InProgress, OnHold, Side::Receiver),
    (InProgress, Completed, Side::Receiver),
    (InProgress, Failed, Side::Receiver),
    (InProgress, Cancelled, Side::Sender),
    (InProgress, EnteredInError, Side::Sender),
    (OnHold, InProgress, Side::Receiver),
    (OnHold, Failed, Side::Receiver),
    (OnHold, Cancelled, Side::Sender),
    (OnHold, EnteredInError, Side::Sender),
    (Rejected, EnteredInError, Side::Sender),
    (Completed, EnteredInError, Side::Sender),
    (Failed, EnteredInError, Side::Sender),
    (Cancelled, EnteredInError, Side::Sender),
];

/// Why a move is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    /// No such move from this status.
    NoSuchMove,
    /// The move exists, but only the other side may make it.
    WrongSide { allowed: Side },
    /// FHIR requires a reason for this status.
    ReasonRequired,
}

/// Checks one move.
pub fn check(
    from: ReferralStatus,
    to: ReferralStatus,
    by: Side,
    reason: Option<&str>,
) -> Result<(), MoveError> {
    let Some(&(_, _, allowed)) = MOVES.iter().find(|(f, t, _)| *f == from && *t == to) else {
        return Err(MoveError::NoSuchMove);
    };
    if allowed != by {
        return Err(MoveError::WrongSide { allowed });
    }
    if to.requires_reason() && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(MoveError::ReasonRequired);
    }
    Ok(())
}

/// The statuses that can follow `from`.
pub fn next(from: ReferralStatus) -> impl Iterator<Item = (ReferralStatus, Side)> {
    MOVES
        .iter()
        .filter(move |(f, _, _)| *f == from)
        .map(|(_, t, s)| (*t, *s))
}

/// A referral that has ended, one way or another.
pub fn is_closed(status: ReferralStatus) -> bool {
    matches!(
        status,
        Rejected | Completed | Failed | Cancelled | EnteredInError
    )
}

/// When the consent a referral relies on is withdrawn, the gateway puts it on hold if it is
/// still open; closed referrals keep their status (and their history says what happened).
pub fn held_on_withdrawal(status: ReferralStatus) -> bool {
    matches!(status, Requested | Received | Accepted | InProgress)
}

/// A referral that waits for its first response (and so can be overdue).
pub fn awaits_response(status: ReferralStatus) -> bool {
    matches!(status, Requested | Received)
}

/// Identity is released to the receiver once it has accepted, and stays released for the work
/// that follows, unless the referral turns out to have been an error.
pub fn identity_released(history: &[ReferralStatus], now: ReferralStatus) -> bool {
    now != EnteredInError && history.contains(&Accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_move_leaves_entered_in_error_and_every_terminal_is_closed() {
        assert_eq!(next(EnteredInError).count(), 0);
        for t in [Rejected, Completed, Failed, Cancelled] {
            assert!(next(t).all(|(to, s)| to == EnteredInError && s == Side::Sender));
        }
    }

    #[test]
    fn reasons_are_required_where_fhir_requires_them() {
        assert_eq!(
            check(Requested, Rejected, Side::Receiver, None),
            Err(MoveError::ReasonRequired)
        );
        assert_eq!(
            check(Requested, Rejected, Side::Receiver, Some("  ")),
            Err(MoveError::ReasonRequired)
        );
        assert_eq!(
            check(Requested, Rejected, Side::Receiver, Some("no beds")),
            Ok(())
        );
        assert_eq!(
            check(Requested, Accepted, Side::Sender, None),
            Err(MoveError::WrongSide {
                allowed: Side::Receiver
            })
        );
    }
}

#[cfg(test)]
mod documentation {
    #[test]
    fn the_lifecycle_document_lists_exactly_these_moves() {
        let doc = include_str!("../../docs/referral-lifecycle.md");
        let documented: Vec<(String, String, String)> = doc
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect();
                match cells.as_slice() {
                    [f, t, by] if *by == "sender" || *by == "receiver" => {
                        Some((f.to_string(), t.to_string(), by.to_string()))
                    }
                    _ => None,
                }
            })
            .collect();
        let code: Vec<(String, String, String)> = super::MOVES
            .iter()
            .map(|(f, t, s)| {
                (
                    f.as_str().to_owned(),
                    t.as_str().to_owned(),
                    s.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(documented, code);
    }
}
