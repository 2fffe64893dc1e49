//! [`Shutdown`]: a cloneable "stop now" signal. The signal handler (or a
//! test) owns the [`ShutdownTrigger`]; every task that must stop holds a
//! `Shutdown` and checks or awaits it.

use tokio::sync::watch;

/// Sends the shutdown signal; dropping it does not signal.
#[derive(Clone)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Receives the shutdown signal.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A new trigger and its first receiver.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Signals every receiver.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Another receiver.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A receiver that never fires.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive forever so `recv` stays pending.
        std::mem::forget(tx);
        Shutdown { rx }
    }

    /// Whether the signal was sent.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits for the signal (returns at once if it was sent).
    pub async fn recv(&mut self) {
        if self.rx.wait_for(|stop| *stop).await.is_err() {
            // Trigger dropped without signalling: never fires.
            std::future::pending::<()>().await;
        }
    }
}
