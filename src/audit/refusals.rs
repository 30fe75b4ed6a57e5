//! Refusals of callers who never authenticated (no, garbage or forged token; refused WebSocket upgrades;
//! unauthenticated tool calls; oversized bodies and foreign origins before authentication) are recorded
//! aggregated: the first of equal refusals (same address, transport, action, reason and patient) in a
//! window gets its own row at once (`count=1`); the rest of that window become ONE row whose detail ends
//! in `count=N`. An attacker cannot flood the permanent log (at most two rows per distinct refusal per
//! window), and no refusal is dropped: every one is counted in some row (flushed every window and at
//! shutdown).
//!
//! Memory is bounded: at most [`MAX_KEYS`] distinct refusals are held per window; beyond that, new ones
//! are counted under one overflow key per transport and action (address and patient left out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use super::{AuditEvent, Outcome, Transport};
use crate::domain::ids::Mrn;

/// How long equal refusals are folded into one row.
pub const WINDOW: Duration = Duration::from_secs(5);

/// Most distinct refusals held between two flushes.
pub const MAX_KEYS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    peer: Option<IpAddr>,
    transport: &'static str,
    action: String,
    reason: String,
    patient: Option<String>,
}

struct Pending {
    transport: Transport,
    patient: Option<Mrn>,
    count: u64,
}

/// The refusals counted since the last flush.
#[derive(Default)]
pub(super) struct RefusalCounts {
    pending: Mutex<HashMap<Key, Pending>>,
}

/// One unauthenticated refusal, as a door reports it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub transport: Transport,
    pub peer: Option<IpAddr>,
    /// The door or tool: `mcp.http`, `websocket.upgrade`, a tool name.
    pub action: String,
    /// A short code (`no_token`, `invalid_token`, `payload_too_large`, `origin_forbidden`, …).
    pub reason: String,
    /// The patient the request named, when it named one.
    pub patient: Option<Mrn>,
}

impl RefusalCounts {
    /// Counts `refusal`; returns the event to record at once when it is the first of its kind in this
    /// window (it is then not counted again at the flush).
    pub(super) fn count(&self, refusal: Refusal) -> Option<AuditEvent> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = Key {
            peer: refusal.peer,
            transport: refusal.transport.as_str(),
            action: refusal.action,
            reason: refusal.reason,
            patient: refusal.patient.as_ref().map(|mrn| mrn.as_str().to_owned()),
        };
        let mut patient = refusal.patient;
        if !pending.contains_key(&key) && pending.len() >= MAX_KEYS {
            key.peer = None;
            key.patient = None;
            key.reason = "overflow".to_owned();
            patient = None;
        }
        if let Some(entry) = pending.get_mut(&key) {
            entry.count += 1;
            return None;
        }
        let event = event_of(&key, refusal.transport, patient.clone(), 1);
        pending.insert(
            key,
            Pending {
                transport: refusal.transport,
                patient,
                count: 0,
            },
        );
        Some(event)
    }

    /// Takes everything counted so far, as audit events (one per distinct refusal).
    pub(super) fn drain(&self) -> Vec<AuditEvent> {
        let drained: Vec<(Key, Pending)> = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain()
            .collect();
        drained
            .into_iter()
            .filter(|(_, pending)| pending.count > 0)
            .map(|(key, pending)| event_of(&key, pending.transport, pending.patient, pending.count))
            .collect()
    }
}

fn event_of(key: &Key, transport: Transport, patient: Option<Mrn>, count: u64) -> AuditEvent {
    let peer = key
        .peer
        .map_or_else(|| "unknown".to_owned(), |peer| peer.to_string());
    AuditEvent {
        patient_mrn: patient,
        detail: Some(format!("{}; peer={peer}; count={count}", key.reason)),
        ..AuditEvent::new(transport, key.action.clone(), Outcome::Denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(peer: u8, reason: &str) -> Refusal {
        Refusal {
            transport: Transport::WebSocket,
            peer: Some(IpAddr::from([10, 0, 0, peer])),
            action: "get_patient".to_owned(),
            reason: reason.to_owned(),
            patient: None,
        }
    }

    fn total(events: &[AuditEvent]) -> u64 {
        events
            .iter()
            .filter_map(|event| event.detail.as_deref()?.rsplit_once("count="))
            .map(|(_, count)| count.parse::<u64>().unwrap_or(0))
            .sum()
    }

    #[test]
    fn equal_refusals_fold_into_one_row_and_the_counts_add_up() {
        let counts = RefusalCounts::default();
        let mut immediate = Vec::new();
        for _ in 0..1000 {
            immediate.extend(counts.count(refusal(1, "unauthenticated")));
        }
        immediate.extend(counts.count(refusal(2, "unauthenticated")));
        assert_eq!(immediate.len(), 2, "the first of each kind at once");
        let events = counts.drain();
        assert_eq!(events.len(), 1, "the other 999 of address 1 in one row");
        assert_eq!(total(&immediate) + total(&events), 1001);
        assert!(counts.drain().is_empty());
    }

    #[test]
    fn distinct_refusals_beyond_the_bound_are_counted_not_dropped() {
        let counts = RefusalCounts::default();
        let extra = 100;
        let mut immediate = Vec::new();
        for index in 0..MAX_KEYS + extra {
            immediate.extend(counts.count(refusal(1, &format!("reason {index}"))));
        }
        assert_eq!(immediate.len(), MAX_KEYS + 1);
        let events = counts.drain();
        assert_eq!(events.len(), 1, "the overflow row");
        assert_eq!(
            total(&immediate) + total(&events),
            (MAX_KEYS + extra) as u64
        );
    }
}
