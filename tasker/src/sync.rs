//! One rule for poisoned locks.
//!
//! A mutex is poisoned when a thread panicked while holding it. Every lock
//! in this crate guards data that one statement changes (a map insert or
//! remove, a push, a metrics update), so a panic elsewhere cannot leave it
//! half-changed: the data is taken as it is and the engine goes on, rather
//! than turning one panicking step into a panic of every later caller.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering its data if a panic poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
