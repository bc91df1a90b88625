//! The per-message handler and the message stream against a real server,
//! on async-std and on smol.

use std::sync::mpsc;

use futures_lite::StreamExt;
use xgroup_async_std::Consumer;
use xgroup_testkit::scenarios::Running;
use xgroup_testkit::shapes::{Background, EachSpec};

/// Starts a per-message consumer for `spec`, its run spawned by `spawn`
/// and awaited with `block_on` on a thread of its own.
fn start_each(
    spec: EachSpec,
    block_on: fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
) -> Box<dyn Running> {
    let handler = spec.clone();
    let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
        .handler_each(move |message| {
            let spec = handler.clone();
            async move { spec.handle(message) }
        });
    let consumer = spec.apply(builder).build().expect("valid options");
    let handle = consumer.handle();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let _ = tx.send(consumer.run().await);
        }))
    });
    Background::watch(handle, done)
}

/// Starts a consumer for `spec` and takes its `messages()` in a task of
/// the runtime (`block_on`), deciding each on a thread of its own.
fn start_stream(
    spec: EachSpec,
    block_on: fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
) -> Box<dyn Running> {
    let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer);
    let consumer = spec.apply(builder).build().expect("valid options");
    let handle = consumer.handle();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let mut messages = consumer.messages();
            let mut result = Ok(());
            while let Some(delivery) = messages.next().await {
                match delivery {
                    Ok(delivery) => spec.decide_apart(delivery),
                    Err(e) => result = Err(e),
                }
            }
            let _ = tx.send(result);
        }))
    });
    Background::watch(handle, done)
}

/// Starts a consumer for `spec` with a batch handler.
fn start_batches(
    spec: EachSpec,
    block_on: fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
) -> Box<dyn Running> {
    let handler = spec.clone();
    let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
        .configure(|c| (spec.configure)(c))
        .handler_fn(move |batch| {
            let spec = handler.clone();
            async move { spec.handle_batch(batch) }
        });
    let builder = match spec.concurrency {
        Some(n) => builder.concurrency(n),
        None => builder,
    };
    let consumer = builder.build().expect("valid options");
    let handle = consumer.handle();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let _ = tx.send(consumer.run().await);
        }))
    });
    Background::watch(handle, done)
}

mod async_std_runtime {
    use super::*;
    use xgroup_testkit::shapes::Shapes;

    struct AsyncStd;

    fn block_on(f: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        async_std::task::block_on(f)
    }

    impl Shapes for AsyncStd {
        fn start_each(spec: EachSpec) -> Box<dyn Running> {
            start_each(spec, block_on)
        }
        fn start_stream(spec: EachSpec) -> Box<dyn Running> {
            start_stream(spec, block_on)
        }
        fn start_batches(spec: EachSpec) -> Box<dyn Running> {
            start_batches(spec, block_on)
        }
    }

    xgroup_testkit::shape_scenarios!(AsyncStd);
}

mod smol_runtime {
    use super::*;
    use xgroup_testkit::shapes::Shapes;

    struct Smol;

    fn block_on(f: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        smol::block_on(f)
    }

    impl Shapes for Smol {
        fn start_each(spec: EachSpec) -> Box<dyn Running> {
            start_each(spec, block_on)
        }
        fn start_stream(spec: EachSpec) -> Box<dyn Running> {
            start_stream(spec, block_on)
        }
        fn start_batches(spec: EachSpec) -> Box<dyn Running> {
            start_batches(spec, block_on)
        }
    }

    xgroup_testkit::shape_scenarios!(Smol);
}
