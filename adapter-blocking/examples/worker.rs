//! A consumer for real use and for black-box tests. For every message it
//! handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
//! message's ack is sent; SIGINT/SIGTERM stop it gracefully (exit 0). Flags,
//! decisions and output are shared by every adapter's worker
//! (`xgroup_testkit::examples::worker`).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xgroup_blocking::Consumer;
use xgroup_testkit::examples::{init_tracing, worker};

fn main() {
    init_tracing();
    let args = worker::Args::parse_for("blocking");
    let w = worker::Worker::new(&args);
    let consumer = Consumer::builder(&args.url, args.stream(), &args.group, &args.consumer)
        .configure(|c| args.configure(c))
        .on_dead_letter(worker::dead_lettered)
        .handler_fn(move |batch| w.handle_blocking(&batch, std::thread::sleep))
        .build();
    let consumer = worker::built(consumer);
    let handle = consumer.handle();
    match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    handle.stop();
                }
            });
        }
        Err(e) => eprintln!("worker: cannot watch SIGINT/SIGTERM: {e}"),
    }
    worker::ran(consumer.run());
}
