//! Handler threads, kept between batches.
//!
//! Starting a thread per batch costs tens of microseconds of CPU (most of a
//! small batch's cost). The pool keeps finished threads waiting for the next
//! batch and starts a new one only when none is idle, so a handler never
//! waits behind another (a hung one included) and the number of threads
//! stays at the most batches ever handled at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs jobs on reused threads; threads end once the pool is dropped and
/// their job is done.
pub(crate) struct Pool {
    tx: Sender<Job>,
    rx: Arc<Mutex<Receiver<Job>>>,
    /// Threads waiting for a job and not yet promised one.
    idle: Arc<AtomicUsize>,
}

impl Pool {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Pool {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub(crate) fn run(&self, job: Job) -> std::io::Result<()> {
        // Take an idle thread's token: that thread is then bound to pick up
        // a job from the channel, so this one never queues behind a busy one.
        let taken = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            match self.tx.send(job) {
                Ok(()) => return Ok(()),
                // Unreachable while the pool holds the receiver; start one.
                Err(mpsc::SendError(job)) => return self.spawn(job),
            }
        }
        self.spawn(job)
    }

    fn spawn(&self, first: Job) -> std::io::Result<()> {
        let (rx, idle) = (self.rx.clone(), self.idle.clone());
        std::thread::Builder::new()
            .name("xgroup-handler".into())
            .spawn(move || {
                first();
                loop {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match next {
                        Ok(job) => job(),
                        // The pool is gone: nothing more to run.
                        Err(_) => return,
                    }
                }
            })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn threads_are_reused_and_no_job_waits_behind_a_busy_one() {
        let pool = Pool::new();
        let (done, finished) = channel();
        // A job that blocks until released: the next job must not wait for it.
        let (release, blocked) = channel::<()>();
        let d = done.clone();
        pool.run(Box::new(move || {
            let _ = blocked.recv();
            let _ = d.send(std::thread::current().id());
        }))
        .unwrap();
        let mut ids = Vec::new();
        for _ in 0..20 {
            let d = done.clone();
            pool.run(Box::new(move || {
                let _ = d.send(std::thread::current().id());
            }))
            .unwrap();
            ids.push(finished.recv_timeout(Duration::from_secs(10)).unwrap());
            // Let the finished thread register as idle before the next job.
            while pool.idle.load(Ordering::Acquire) == 0 {
                std::thread::yield_now();
            }
        }
        release.send(()).unwrap();
        let blocked_id = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        // Twenty sequential jobs ran on one reused thread, not the blocked one.
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_ne!(ids[0], blocked_id);
    }
}
