//! The per-message handler and the message stream against a real server,
//! on std threads.

use std::sync::mpsc;

use xgroup_blocking::Consumer;
use xgroup_testkit::scenarios::Running;
use xgroup_testkit::shapes::{consume, Background, EachSpec, Shapes};

struct Blocking;

impl Shapes for Blocking {
    fn start_each(spec: EachSpec) -> Box<dyn Running> {
        let handler = spec.clone();
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .handler_each(move |message| handler.handle(message));
        let consumer = spec.apply(builder).build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(consumer.run());
        });
        Background::watch(handle, done)
    }

    fn start_stream(spec: EachSpec) -> Box<dyn Running> {
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer);
        let consumer = spec.apply(builder).build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(consume(&spec, consumer.messages()));
        });
        Background::watch(handle, done)
    }

    fn start_batches(spec: EachSpec) -> Box<dyn Running> {
        let handler = spec.clone();
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .configure(|c| (spec.configure)(c))
            .handler_fn(move |batch| handler.handle_batch(batch));
        let builder = match spec.concurrency {
            Some(n) => builder.concurrency(n),
            None => builder,
        };
        let consumer = builder.build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(consumer.run());
        });
        Background::watch(handle, done)
    }
}

xgroup_testkit::shape_scenarios!(Blocking);
