//! Every integration scenario against a real server, on std threads.

use std::sync::mpsc;
use std::time::Duration;

use xgroup_blocking::{
    Connection, Consumer, ConsumerHandle, ConsumerInfo, Error, Json, Payload, StreamId, XAddOptions,
};
use xgroup_testkit::scenarios::{plan, Adapter, Running, Spec};

struct Blocking;

struct Run {
    handle: ConsumerHandle,
    done: mpsc::Receiver<Result<(), Error>>,
    result: Option<Result<(), Error>>,
}

impl Adapter for Blocking {
    fn start(spec: Spec) -> Box<dyn Running> {
        let (behavior, seen, configure) =
            (spec.behavior, spec.seen.clone(), spec.configure.clone());
        let consumer = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .configure(|c| configure(c))
            .handler_fn(move |batch| {
                seen.started();
                let plan = plan(behavior, &batch);
                if !plan.sleep.is_zero() {
                    std::thread::sleep(plan.sleep);
                }
                seen.record(&batch);
                match plan.outcome {
                    Some(outcome) => outcome,
                    None => panic!("planned handler panic"),
                }
            })
            .build()
            .expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(consumer.run());
        });
        Box::new(Run {
            handle,
            done,
            result: None,
        })
    }

    fn xadd_serialized<T: serde::Serialize>(
        url: &str,
        stream: &str,
        values: &[T],
    ) -> Result<Vec<StreamId>, Error> {
        let mut conn = Connection::connect(url)?;
        let options = XAddOptions::default();
        values
            .iter()
            .map(|value| conn.xadd_serialized(stream, value, &options))
            .collect()
    }

    fn xadd_payload<T: serde::Serialize>(
        url: &str,
        stream: &str,
        payload: &Payload<Json>,
        value: &T,
    ) -> Result<StreamId, Error> {
        let mut conn = Connection::connect(url)?;
        conn.xadd_payload(stream, payload, value, &XAddOptions::default())
    }
}

impl Running for Run {
    fn stop(&self) {
        self.handle.stop();
    }
    fn info(&self) -> ConsumerInfo {
        self.handle.info()
    }
    fn wait(&mut self, timeout: Duration) -> Option<Result<(), Error>> {
        if self.result.is_none() {
            self.result = self.done.recv_timeout(timeout).ok();
        }
        self.result.clone()
    }
    /// A blocking consumer cannot be aborted: the scenario has already cut
    /// its network (a refusing proxy), so its thread is left running, stuck
    /// in the slow handler's drain or in reconnect backoff, until the test
    /// process ends. It can no longer reach the server.
    fn kill(self: Box<Self>) {}
}

xgroup_testkit::adapter_scenarios!(Blocking);

/// The same scenarios against xgroup's in-memory model served over TCP.
mod on_the_model {
    use super::Blocking;

    xgroup_testkit::adapter_scenarios!(on_the_model Blocking);
}
