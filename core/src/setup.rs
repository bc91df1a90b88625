//! The runtime-independent half of every adapter's consumer builder: where
//! to connect, the core options, the failure callback, and the `info()`
//! record.

use std::sync::Arc;

use crate::config::{ConsumerConfig, ConsumerConfigBuilder};
use crate::consumer::{Consumer, ConsumerInfo, DeadLettered};
use crate::error::{ConfigError, Error};
use crate::url::{parse_url, ServerAddr};

/// Called for every dead-lettered entry (the failure callback).
pub type DeadLetterHook = Arc<dyn Fn(&DeadLettered) + Send + Sync>;

/// What an adapter's builder collects before `build()`.
#[derive(Clone)]
pub struct ConsumerSetup {
    addr: Result<ServerAddr, ConfigError>,
    config: ConsumerConfigBuilder,
    on_dead_letter: Option<DeadLetterHook>,
}

/// A checked setup, ready to run.
#[derive(Clone)]
pub struct PreparedConsumer {
    /// Where to connect.
    pub addr: ServerAddr,
    /// The validated options.
    pub config: ConsumerConfig,
    /// The record `info()` reports, kept current with [`ConsumerInfo::update`].
    pub info: ConsumerInfo,
    /// The failure callback, if any.
    pub on_dead_letter: Option<DeadLetterHook>,
}

impl ConsumerSetup {
    /// From a `redis://[user:password@]host[:port][/db]` URL; a bad URL is
    /// reported by [`prepare`](Self::prepare).
    pub fn from_url(
        url: &str,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> Self {
        let parsed = parse_url(url);
        let mut config = ConsumerConfig::builder(stream, group, consumer);
        if let Ok((_, opts)) = &parsed {
            config = config.connect_options(opts.clone());
        }
        ConsumerSetup {
            addr: parsed.map(|(addr, _)| addr),
            config,
            on_dead_letter: None,
        }
    }

    /// From host and port (credentials through `connect_options`).
    pub fn from_host(
        host: &str,
        port: u16,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> Self {
        ConsumerSetup {
            addr: Ok(ServerAddr {
                host: host.to_owned(),
                port,
            }),
            config: ConsumerConfig::builder(stream, group, consumer),
            on_dead_letter: None,
        }
    }

    /// Changes core options.
    pub fn configure(
        mut self,
        f: impl FnOnce(ConsumerConfigBuilder) -> ConsumerConfigBuilder,
    ) -> Self {
        self.config = f(self.config);
        self
    }

    /// Sets the failure callback, called for every dead-lettered entry.
    pub fn on_dead_letter(mut self, f: impl Fn(&DeadLettered) + Send + Sync + 'static) -> Self {
        self.on_dead_letter = Some(Arc::new(f));
        self
    }

    /// Checks the URL and every option, for a handler of type `handler`.
    pub fn prepare(self, handler: &'static str) -> Result<PreparedConsumer, Error> {
        let addr = self.addr?;
        let config = self.config.build()?;
        let info = ConsumerInfo::new(&config, handler);
        Ok(PreparedConsumer {
            addr,
            config,
            info,
            on_dead_letter: self.on_dead_letter,
        })
    }
}

impl std::fmt::Debug for ConsumerSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSetup")
            .field("addr", &self.addr)
            .field("config", &self.config)
            .field("on_dead_letter", &self.on_dead_letter.is_some())
            .finish()
    }
}

impl std::fmt::Debug for PreparedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedConsumer")
            .field("addr", &self.addr)
            .field("config", &self.config)
            .field("info", &self.info)
            .field("on_dead_letter", &self.on_dead_letter.is_some())
            .finish()
    }
}

impl ConsumerInfo {
    /// Copies the consumer's counters, gauges and connection state.
    pub fn update(&mut self, consumer: &Consumer) {
        self.stats = consumer.stats();
        self.connected = consumer.is_connected();
        self.in_flight_batches = consumer.in_flight();
        self.held_entries = consumer.held_entries();
        self.group_counts = consumer.group_counts();
    }
}
