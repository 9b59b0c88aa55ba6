//! The runtime's clock: the real one, or a paused one that only moves when
//! told to (or, with nothing left to run, jumps to the next timer).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A real or paused clock, shared by the driver and its handles.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    origin: Instant,
    /// `Some(elapsed)` while paused: now = origin + elapsed.
    paused: Option<Arc<Mutex<Duration>>>,
}

impl Clock {
    pub(crate) fn new(start_paused: bool) -> Clock {
        Clock {
            origin: Instant::now(),
            paused: start_paused.then(|| Arc::new(Mutex::new(Duration::ZERO))),
        }
    }

    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.paused {
            None => Instant::now(),
            Some(elapsed) => self.origin + *elapsed.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// Moves a paused clock forward to `instant` (never backwards).
    pub(crate) fn advance_to(&self, instant: Instant) {
        if let Some(elapsed) = &self.paused {
            let mut elapsed = elapsed.lock().unwrap_or_else(PoisonError::into_inner);
            let target = instant.saturating_duration_since(self.origin);
            if target > *elapsed {
                *elapsed = target;
            }
        }
    }
}
