//! The one event stream: lifecycle events go out here and feed every consumer (the
//! gRPC Events call now; Docker's /events and the UI later).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// One event as the engine records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub seq: u64,
    pub kind: String,
    pub action: String,
    pub time_unix_nanos: i64,
    pub attributes: BTreeMap<String, String>,
}

impl From<EventRecord> for berth_proto::v1::Event {
    fn from(e: EventRecord) -> Self {
        berth_proto::v1::Event {
            seq: e.seq,
            r#type: e.kind,
            action: e.action,
            time_unix_nanos: e.time_unix_nanos,
            attributes: e.attributes.into_iter().collect(),
        }
    }
}

/// A broadcast bus that also keeps the most recent events, so a subscriber that
/// arrives late can replay them without a gap or a duplicate.
#[derive(Debug)]
pub struct EventBus {
    state: Mutex<BusState>,
    capacity: usize,
}

#[derive(Debug)]
struct BusState {
    next_seq: u64,
    recent: VecDeque<EventRecord>,
    sender: broadcast::Sender<EventRecord>,
}

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        let (sender, _) = broadcast::channel(capacity);
        EventBus { state: Mutex::new(BusState { next_seq: 1, recent: VecDeque::new(), sender }), capacity }
    }

    /// Records an event and sends it to every subscriber.
    pub fn publish(&self, kind: &str, action: &str, attributes: impl IntoIterator<Item = (String, String)>) -> EventRecord {
        let time_unix_nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)).unwrap_or(0);
        let mut state = self.lock();
        let record = EventRecord {
            seq: state.next_seq,
            kind: kind.to_owned(),
            action: action.to_owned(),
            time_unix_nanos,
            attributes: attributes.into_iter().collect(),
        };
        state.next_seq += 1;
        if state.recent.len() == self.capacity {
            state.recent.pop_front();
        }
        state.recent.push_back(record.clone());
        // No subscriber is not an error: the event is still kept for replay.
        let _ = state.sender.send(record.clone());
        record
    }

    /// Subscribes to live events; with `replay`, also returns the kept recent events.
    /// Taking both under one lock means no event is missed or seen twice.
    /// How many subscribers follow the bus now (docker's `NEventsListener`).
    pub fn listeners(&self) -> usize {
        self.lock().sender.receiver_count()
    }

    pub fn subscribe(&self, replay: bool) -> (Vec<EventRecord>, broadcast::Receiver<EventRecord>) {
        let state = self.lock();
        let backlog = if replay { state.recent.iter().cloned().collect() } else { Vec::new() };
        (backlog, state.sender.subscribe())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BusState> {
        // A panic while holding this lock cannot leave the state half-updated in a way
        // that matters (each field stays valid on its own), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_then_live_without_gap_or_duplicate() {
        let bus = EventBus::new(8);
        bus.publish("engine", "ready", []);
        let (backlog, mut rx) = bus.subscribe(true);
        bus.publish("engine", "stopping", [("signal".into(), "TERM".into())]);
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].action, "ready");
        assert_eq!(backlog[0].seq, 1);
        let live = rx.recv().await.expect("live event");
        assert_eq!(live.action, "stopping");
        assert_eq!(live.seq, 2);
        assert_eq!(live.attributes.get("signal").map(String::as_str), Some("TERM"));
    }

    #[test]
    fn recent_buffer_is_bounded() {
        let bus = EventBus::new(3);
        for i in 0..10 {
            bus.publish("test", &format!("a{i}"), []);
        }
        let (backlog, _) = bus.subscribe(true);
        let actions: Vec<_> = backlog.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["a7", "a8", "a9"]);
        assert_eq!(backlog[2].seq, 10);
    }

    #[test]
    fn no_replay_means_empty_backlog() {
        let bus = EventBus::new(3);
        bus.publish("engine", "ready", []);
        let (backlog, _) = bus.subscribe(false);
        assert!(backlog.is_empty());
    }
}
