//! The shutdown signal every long-running loop watches, and the trigger that fires it.

use std::sync::Arc;

use tokio::sync::watch;

/// Tells every runner to stop; dropping it stops them too.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// What runners watch to know when to stop taking new work. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    receiver: watch::Receiver<bool>,
    // Keeps a never-firing signal's channel open.
    _never: Option<Arc<watch::Sender<bool>>>,
}

/// A new trigger and its signal.
pub fn shutdown_pair() -> (ShutdownTrigger, ShutdownSignal) {
    let (sender, receiver) = watch::channel(false);
    (
        ShutdownTrigger { sender },
        ShutdownSignal {
            receiver,
            _never: None,
        },
    )
}

impl ShutdownTrigger {
    /// Asks every runner watching a signal of this trigger to stop.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }

    /// Another signal of this trigger.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            receiver: self.sender.subscribe(),
            _never: None,
        }
    }
}

impl ShutdownSignal {
    /// A signal that never fires (for runners that should run until dropped).
    pub fn never() -> Self {
        let (sender, receiver) = watch::channel(false);
        Self {
            receiver,
            _never: Some(Arc::new(sender)),
        }
    }

    /// True once shutdown was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes once shutdown is asked for (or its trigger is dropped).
    pub async fn wait(mut self) {
        while !*self.receiver.borrow_and_update() {
            if self.receiver.changed().await.is_err() {
                return;
            }
        }
    }
}
