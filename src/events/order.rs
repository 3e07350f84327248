//! Which of two events about one object is newer, so a late, repeated or reordered
//! event never undoes a newer state.
//!
//! S3's `sequencer` is a hexadecimal string that grows with each event of one object
//! key; two sequencers compare as numbers of arbitrary length (the shorter one padded
//! with zeros on the left). Without sequencers the event times are compared.

use std::cmp::Ordering;

/// Where an event stands in the history of its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Upper-case hexadecimal digits without leading zeros (`""` is zero), when the
    /// event had a valid sequencer.
    sequencer: Option<Box<str>>,
    /// Event time, milliseconds since the Unix epoch, when it had one.
    time_ms: Option<i64>,
    /// What the event did (a creation, a removal): two events of different kinds are
    /// never one event delivered twice, even when a sender stamps both alike.
    kind: u8,
}

impl Stamp {
    /// A stamp from an event's `sequencer` (ignored unless hexadecimal), time and kind
    /// (any small number that tells kinds of events apart).
    pub(crate) fn new(sequencer: Option<&str>, time_ms: Option<i64>, kind: u8) -> Stamp {
        Stamp {
            sequencer: sequencer.and_then(normalize),
            time_ms,
            kind,
        }
    }

    #[cfg(test)]
    fn has_sequencer(&self) -> bool {
        self.sequencer.is_some()
    }

    /// Whether an event stamped `self` comes after one stamped `applied` and should be
    /// applied. Equal sequencers of the same kind are the same event (a redelivery):
    /// not newer; of different kinds (MinIO stamps some events with the object's
    /// modification time) they cannot be ordered, and the later arrival is applied.
    /// Equal times are newer (events within one millisecond cannot be ordered by time,
    /// and re-applying an event is harmless). Stamps that share nothing to compare are
    /// applied: nothing proves them older.
    pub(crate) fn supersedes(&self, applied: &Stamp) -> bool {
        match (&self.sequencer, &applied.sequencer) {
            (Some(a), Some(b)) => match compare_hex(a, b) {
                Ordering::Greater => true,
                Ordering::Equal => self.kind != applied.kind,
                Ordering::Less => false,
            },
            _ => match (self.time_ms, applied.time_ms) {
                (Some(a), Some(b)) => a >= b,
                _ => true,
            },
        }
    }
}

/// Upper-case digits without leading zeros; `None` if `s` is empty or not hexadecimal.
fn normalize(s: &str) -> Option<Box<str>> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(s.trim_start_matches('0').to_ascii_uppercase().into())
}

/// Two normalised hexadecimal numbers: the longer is larger, else digit by digit.
fn compare_hex(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(s: &str) -> Stamp {
        Stamp::new(Some(s), None, 0)
    }

    #[test]
    fn sequencers_compare_after_left_padding() {
        assert!(seq("0A").supersedes(&seq("9")));
        assert!(seq("10").supersedes(&seq("0F")));
        assert!(
            !seq("0055").supersedes(&seq("55")),
            "same value: a redelivery"
        );
        assert!(seq("0062E9A9AD4B5C3B").supersedes(&seq("62E9A9AD4B5C3A")));
        assert!(seq("abc").supersedes(&seq("ABB")), "case does not matter");
        assert!(!seq("ABB").supersedes(&seq("abc")));
    }

    #[test]
    fn times_decide_without_sequencers() {
        let at = |t| Stamp::new(None, Some(t), 0);
        assert!(at(2).supersedes(&at(1)));
        assert!(!at(1).supersedes(&at(2)));
        assert!(at(1).supersedes(&at(1)));
        // A sequencer on one side only: the times still decide.
        assert!(!Stamp::new(Some("FF"), Some(1), 0).supersedes(&at(2)));
        // Nothing to compare: applied.
        assert!(Stamp::new(None, None, 0).supersedes(&at(5)));
        // Garbage is no sequencer.
        assert!(!Stamp::new(Some("xyz"), None, 0).has_sequencer());
        // The same sequencer on a different kind of event is not a redelivery.
        assert!(Stamp::new(Some("0A"), None, 1).supersedes(&seq("A")));
    }

    proptest! {
        #[test]
        fn sequencer_order_is_numeric_order(a in any::<u64>(), b in any::<u64>(), pa in 0usize..6, pb in 0usize..6) {
            let ha = format!("{}{a:X}", "0".repeat(pa));
            let hb = format!("{}{b:x}", "0".repeat(pb));
            prop_assert_eq!(seq(&ha).supersedes(&seq(&hb)), a > b);
        }

        #[test]
        fn exactly_one_of_two_different_events_is_newer(a in "[0-9A-F]{1,40}", b in "[0-9A-F]{1,40}") {
            let (x, y) = (seq(&a), seq(&b));
            let same = a.trim_start_matches('0') == b.trim_start_matches('0');
            prop_assert_eq!(x.supersedes(&y) || y.supersedes(&x), !same);
            prop_assert!(!(x.supersedes(&y) && y.supersedes(&x)));
        }
    }
}
