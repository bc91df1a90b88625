//! Handler threads, kept between batches: the blocking adapter runs its
//! handlers on them, and the async-std adapter drives its handler futures
//! there with `block_on` (it knows no executor to spawn them on).
//!
//! Starting a thread per batch costs tens of microseconds of CPU (most of a
//! small batch's cost). A thread that finished its batch is named in the
//! batch's completion and the driving thread gives it the next one; a new
//! thread starts only when none is idle, so a handler never waits behind
//! another (a hung one included) and the number of threads stays at the most
//! batches ever handled at once.

use std::io;
use std::sync::mpsc::{self, Sender};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Names a handler thread of a [`HandlerThreads`]; its job hands it back (to
/// [`HandlerThreads::done`]) when done.
#[derive(Debug)]
pub struct Worker(usize);

/// Handler threads: each runs the jobs sent to it, and ends with the pool
/// (after its job, if it has one).
#[derive(Debug, Default)]
pub struct HandlerThreads {
    threads: Vec<Sender<Job>>,
    idle: Vec<Worker>,
}

impl HandlerThreads {
    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub fn run(&mut self, job: impl FnOnce(Worker) + Send + 'static) -> io::Result<()> {
        let Worker(i) = match self.idle.pop() {
            Some(worker) => worker,
            None => {
                let (tx, jobs) = mpsc::channel::<Job>();
                thread::Builder::new()
                    .name("xgroup-handler".into())
                    .spawn(move || jobs.into_iter().for_each(|job| job()))?;
                self.threads.push(tx);
                Worker(self.threads.len() - 1)
            }
        };
        self.threads[i]
            .send(Box::new(move || job(Worker(i))))
            .map_err(|_| io::Error::other("handler thread gone"))
    }

    /// A thread's job is done: it takes the next one.
    pub fn done(&mut self, worker: Worker) {
        self.idle.push(worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn threads_are_reused_and_no_job_waits_behind_a_busy_one() {
        let mut pool = HandlerThreads::default();
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
