//! How many order event streams each caller holds open, so one key cannot hold them all
//! (see `ApiConfig::max_streams_per_key`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open event streams per caller.
#[derive(Debug, Default)]
pub(crate) struct OpenStreams(Arc<Mutex<HashMap<String, usize>>>);

impl OpenStreams {
    /// One more stream for `caller`, unless it already holds `max`.
    pub(crate) fn open(&self, caller: &str, max: usize) -> Option<StreamSlot> {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(caller.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            open: Arc::clone(&self.0),
            caller: caller.to_owned(),
        })
    }
}

/// A caller's place among its open streams, given back when the stream ends (its
/// client went away or the server stops).
#[derive(Debug)]
pub(crate) struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    caller: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}
