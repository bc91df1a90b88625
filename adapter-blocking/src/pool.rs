//! Handler threads, kept between batches.
//!
//! Starting a thread per batch costs tens of microseconds of CPU (most of a
//! small batch's cost). A thread that finished its batch is handed back (in
//! its completion, to the driving thread) and gets the next one; a new
//! thread starts only when none is idle, so a handler never waits behind
//! another (a hung one included) and the number of threads stays at the most
//! batches ever handled at once.

use std::io;
use std::sync::mpsc::{self, Sender};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handler thread, handed to its job to give back when done. The thread
/// ends once no `Worker` for it is left (the pool is gone, its job is done).
#[derive(Debug)]
pub(crate) struct Worker(Sender<Job>);

/// The idle handler threads.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Vec<Worker>,
}

impl Pool {
    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub(crate) fn run(&mut self, job: impl FnOnce(Worker) + Send + 'static) -> io::Result<()> {
        let Worker(tx) = match self.idle.pop() {
            Some(worker) => worker,
            None => {
                let (tx, jobs) = mpsc::channel::<Job>();
                thread::Builder::new()
                    .name("xgroup-handler".into())
                    .spawn(move || jobs.into_iter().for_each(|job| job()))?;
                Worker(tx)
            }
        };
        let me = Worker(tx.clone());
        tx.send(Box::new(move || job(me)))
            .map_err(|_| io::Error::other("handler thread gone"))
    }

    /// A thread's job is done: it takes the next one.
    pub(crate) fn done(&mut self, worker: Worker) {
        self.idle.push(worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn threads_are_reused_and_no_job_waits_behind_a_busy_one() {
        let mut pool = Pool::default();
        let (done, finished) = mpsc::channel();
        // A job that blocks until released: the next jobs must not wait for it.
        let (release, blocked) = mpsc::channel::<()>();
        let d = done.clone();
        pool.run(move |w| {
            let _ = blocked.recv();
            let _ = d.send((thread::current().id(), w));
        })
        .unwrap();
        let mut ids = Vec::new();
        for _ in 0..20 {
            let d = done.clone();
            pool.run(move |w| d.send((thread::current().id(), w)).unwrap())
                .unwrap();
            let (id, worker) = finished.recv_timeout(Duration::from_secs(10)).unwrap();
            pool.done(worker);
            ids.push(id);
        }
        release.send(()).unwrap();
        let (blocked_id, _) = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        // Twenty sequential jobs ran on one reused thread, not the blocked one.
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_ne!(ids[0], blocked_id);
    }
}
